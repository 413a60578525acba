import type { HostAbi, Interest } from '../abi/host-abi.js';
import type { FdTable } from './fd-table.js';
import type { GuestMemory } from './guest-memory.js';
import type { GuestClock } from './guest-clock.js';
import type { Vfs } from './vfs.js';

/**
 * What a syscall implementation sees of the library OS. Syscall groups (files, sockets, poll…)
 * are plain functions over this, so each group is small and testable on its own.
 */
export interface SyscallHost {
  readonly mem: GuestMemory;
  readonly fds: FdTable;
  readonly vfs: Vfs;
  readonly abi: HostAbi;
  readonly clock: GuestClock;
  readonly args: readonly string[];
  readonly env: readonly string[];
  /**
   * Ask the runtime to suspend the guest in the current (suspending) import until one of
   * `interests` may be ready or `deadlineNs` (GUEST monotonic clock) passes. The import is then
   * called again with the same arguments. Returns the value the import should return now
   * (ignored by the guest, which is being unwound). Only valid in SUSPENDING_WASI_FUNCTIONS.
   */
  block(interests: readonly Interest[], deadlineNs: bigint | null): number;
  /**
   * Set while an import runs again after a suspension (also after a restore in another process):
   * the deadline it gave to `block` the first time and the guest monotonic time when it blocked,
   * so relative timeouts are not restarted.
   */
  readonly resumed: { deadlineNs: bigint | null; blockedAtNs: bigint } | null;
}

/** Thrown by proc_exit; unwinds through the guest to the runtime. */
export class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`guest exited with code ${code}`);
  }
}

/** A group of WASI functions, by name. Arguments are i32 as number and i64 as bigint. */
export type SyscallTable = Record<string, (...args: never[]) => number>;
