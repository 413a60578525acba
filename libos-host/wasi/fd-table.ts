import type { Handle } from '../abi/host-abi.js';
import { Errno, WasiErrno } from './errno.js';

/** Fields every open file descriptor has. Rights follow WASI preview 1 (64-bit masks). */
interface FdCommon {
  fdflags: number;
  rightsBase: bigint;
  rightsInheriting: bigint;
}

export interface StdioFd extends FdCommon { kind: 'stdio'; which: 'stdin' | 'stdout' | 'stderr'; handle: Handle }
/** A regular file (or a symlink opened with O_NOFOLLOW semantics is refused) in the virtual FS. */
export interface FileFd extends FdCommon { kind: 'file'; ino: number; offset: bigint; }
/** A directory in the virtual FS; `preopen` is set for pre-opened directories (the guest path). */
export interface DirFd extends FdCommon { kind: 'dir'; ino: number; preopen: string | null; }
/** A pre-opened listening socket. `uri` is re-bound on restore. */
export interface ListenerFd extends FdCommon { kind: 'listener'; handle: Handle; uri: `tcp.srv:${string}`; name: string | null }
/**
 * An accepted connection. `handle` is null when the connection did not survive a restore.
 * `held` is input already taken from the ABI but not yet consumed by the guest (MSG_PEEK, and
 * a MSG_WAITALL read that had to wait for more).
 */
export interface SocketFd extends FdCommon {
  kind: 'socket'; handle: Handle | null; peer: string; readShut: boolean; writeShut: boolean; held: Uint8Array | null;
}

export type FdEntry = StdioFd | FileFd | DirFd | ListenerFd | SocketFd;
export type FdKind = FdEntry['kind'];

/** Hard cap so a leaking guest gets EMFILE instead of exhausting the host. */
export const MAX_OPEN_FDS = 65536;

/**
 * The guest's file descriptor table. Allocation takes the lowest free number, like POSIX, so
 * guests that assume small fds keep working.
 */
export class FdTable {
  private readonly entries = new Map<number, FdEntry>();

  get size(): number { return this.entries.size; }

  /** The entry for `fd`, or EBADF. */
  get(fd: number): FdEntry {
    const e = this.entries.get(fd);
    if (e === undefined) throw new WasiErrno(Errno.BADF);
    return e;
  }

  /** The entry for `fd` if it has `kind`; EBADF when closed; `wrongKindErrno` otherwise. */
  getKind<K extends FdKind>(fd: number, kind: K, wrongKindErrno: number): Extract<FdEntry, { kind: K }> {
    const e = this.get(fd);
    if (e.kind !== kind) throw new WasiErrno(wrongKindErrno);
    return e as Extract<FdEntry, { kind: K }>;
  }

  /** Check that `fd` holds all `rights`, else ENOTCAPABLE. */
  requireRights(fd: number, rights: bigint): FdEntry {
    const e = this.get(fd);
    if ((e.rightsBase & rights) !== rights) throw new WasiErrno(Errno.NOTCAPABLE);
    return e;
  }

  has(fd: number): boolean { return this.entries.has(fd); }

  /** Insert at the lowest free fd. */
  allocate(entry: FdEntry): number {
    if (this.entries.size >= MAX_OPEN_FDS) throw new WasiErrno(Errno.MFILE);
    let fd = 0;
    while (this.entries.has(fd)) fd++;
    this.entries.set(fd, entry);
    return fd;
  }

  /** Put `entry` at exactly `fd` (replacing nothing: the caller removed any previous entry). */
  set(fd: number, entry: FdEntry): void { this.entries.set(fd, entry); }

  remove(fd: number): FdEntry {
    const e = this.get(fd);
    this.entries.delete(fd);
    return e;
  }

  /** All entries in fd order. */
  list(): Array<[number, FdEntry]> {
    return [...this.entries.entries()].sort((a, b) => a[0] - b[0]);
  }

  clear(): void { this.entries.clear(); }
}
