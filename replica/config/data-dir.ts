import { mkdirSync } from 'node:fs';
import { WaterbearError } from '../../libos-host/errors.js';

/**
 * Create a member's data directory (and its parents) unless it exists. `what` names it in
 * messages (e.g. "the dataDir of replica a"). Throws WB_CONFIG_INVALID when the path or one of
 * its parents is a file, WB_STORE_IO when it cannot be created otherwise (permissions, a full
 * disk), each naming the path.
 */
export function ensureDataDir(dir: string, what: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw notADirectory(dir, what, err);
    throw new WaterbearError('WB_STORE_IO', `cannot create ${what} ${dir} (${code ?? (err as Error).message}): check the path and its permissions`, { cause: err });
  }
}

/** The error for a data directory `dir` (named `what`) where a file is in the way. */
export function notADirectory(dir: string, what: string, cause?: unknown): WaterbearError {
  return new WaterbearError('WB_CONFIG_INVALID', `${what} ${dir} is not a directory (a file is in the way): point it at a directory, or move the file`, { cause });
}
