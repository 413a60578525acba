import pino, { type Logger } from 'pino';

export type { Logger };

/** Default log level: quiet unless something needs an operator's attention. */
export const DEFAULT_LOG_LEVEL = 'warn';

/** A structured logger on stderr; level from WATERBEAR_LOG_LEVEL (trace … fatal, silent). */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ name, level: process.env.WATERBEAR_LOG_LEVEL ?? DEFAULT_LOG_LEVEL, base: { pid: process.pid, ...bindings } }, pino.destination(2));
}
