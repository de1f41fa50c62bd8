/** Where the library's components report what happened; any subset of the four levels. */
export interface Logger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
  error?(message: string, fields?: Record<string, unknown>): void;
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/**
 * The host's logger with each level it has wrapped so that it cannot throw: a logger is the host's code
 * (a closed log sink, a serialiser that chokes on a field), and a throw from it inside the delivery
 * engine would leave slots taken, notifications unsent and `stop()` waiting forever. A level the logger
 * lacks when wrapped stays absent, so callers can still skip building fields nobody reads. The method is
 * looked up at each call: loggers such as pino change level by replacing their methods.
 */
export function safeLogger(logger: Logger): Logger {
  const safe: Logger = {};
  for (const level of LEVELS) {
    if (typeof logger[level] !== 'function') continue;
    safe[level] = (message, fields) => {
      try {
        logger[level]?.(message, fields);
      } catch {
        // Nowhere left to report it.
      }
    };
  }
  return safe;
}
