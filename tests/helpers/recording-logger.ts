import pino from 'pino';
import type { Logger } from '../../replica/log.js';

/** A pino logger at debug whose lines (parsed) go to `lines`. */
export function recordingLogger(lines: Array<Record<string, unknown>>): Logger {
  return pino({ level: 'debug' }, { write: (l: string) => { lines.push(JSON.parse(l) as Record<string, unknown>); } });
}
