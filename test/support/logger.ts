import type { Logger } from '../../src/index.js';

export interface LogLine {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}

/** A `Logger` that keeps every line in `lines`, for tests that read what was logged. */
export function capturingLogger(lines: LogLine[]): Logger {
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    lines.push({ level, message, ...(fields && { fields }) });
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}
