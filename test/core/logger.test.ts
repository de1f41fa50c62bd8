import { describe, expect, it } from 'vitest';
import { type Logger, safeLogger } from '../../src/core/logger.js';

describe('safeLogger', () => {
  it('swallows what a logger throws, and keeps absent levels absent', () => {
    const safe = safeLogger({
      error: () => {
        throw new Error('log sink closed');
      },
    });
    expect(() => safe.error?.('boom', { a: 1 })).not.toThrow();
    expect(safe.debug).toBeUndefined();
    expect(safe.warn).toBeUndefined();
  });

  it('calls the method the logger has at the time of the call (pino swaps them to change level)', () => {
    const lines: string[] = [];
    const silent = (): void => {};
    const logger: Logger & { level: string } = { level: 'info', debug: silent, info: (m) => lines.push(m) };
    const safe = safeLogger(logger);
    safe.debug?.('before');
    logger.level = 'debug';
    logger.debug = (message) => lines.push(message);
    safe.debug?.('after');
    expect(lines).toEqual(['after']);
  });
});
