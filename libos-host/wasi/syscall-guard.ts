import { Errno, WasiErrno } from './errno.js';
import type { SyscallTable } from './syscall-host.js';

/**
 * Wrap each syscall so a thrown WasiErrno becomes its return value. Anything else is a host bug
 * (or ProcExit) and propagates to the runtime.
 */
export function guardSyscalls<T extends Record<string, (...args: never[]) => number | void>>(table: T): SyscallTable {
  const out: SyscallTable = {};
  for (const [name, fn] of Object.entries(table)) {
    const f = fn as (...args: unknown[]) => number | void;
    out[name] = ((...args: unknown[]) => {
      try {
        return f(...args) ?? Errno.SUCCESS;
      } catch (err) {
        if (err instanceof WasiErrno) return err.errno;
        throw err;
      }
    }) as (...args: never[]) => number;
  }
  return out;
}
