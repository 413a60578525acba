/** Argument decoding and fd checks shared by the file-system syscalls. */
import { Errno, WasiErrno } from './errno.js';
import type { DirFd, FdEntry, FileFd } from './fd-table.js';
import type { SyscallHost } from './syscall-host.js';
import type { TimeChange } from './vfs-inode.js';
import { VFS_MAX_FILE_BYTES } from './vfs-inode.js';
import { Fstflags, Lookupflags } from './wasi-constants.js';

/** Fail with ENOTCAPABLE unless `e` holds every right in `rights`. */
export function requireRights(e: FdEntry, rights: bigint): void {
  if ((e.rightsBase & rights) !== rights) throw new WasiErrno(Errno.NOTCAPABLE);
}

/**
 * The directory fd a path_* call is relative to: EBADF when `fd` is not open, ENOTDIR when it is
 * not a directory (openat's errno), ENOTCAPABLE without `rights`.
 */
export function dirFd(host: SyscallHost, fd: number, rights: bigint): DirFd {
  const e = host.fds.get(fd);
  if (e.kind !== 'dir') throw new WasiErrno(Errno.NOTDIR);
  requireRights(e, rights);
  return e;
}

/**
 * The regular-file fd of an fd_* call that only makes sense on files: EBADF when closed,
 * `dirErrno` for a directory, `streamErrno` for a console or socket, ENOTCAPABLE without `rights`.
 */
export function fileFd(host: SyscallHost, fd: number, rights: bigint, dirErrno: number, streamErrno: number): FileFd {
  const e = host.fds.get(fd);
  if (e.kind === 'dir') throw new WasiErrno(dirErrno);
  if (e.kind !== 'file') throw new WasiErrno(streamErrno);
  requireRights(e, rights);
  return e;
}

/** A guest path argument (UTF-8; EILSEQ when invalid, EFAULT when out of bounds). */
export function readPath(host: SyscallHost, ptr: number, len: number): string {
  return host.mem.string(ptr, len);
}

/** An i64 argument that the spec types as u64 (wasm passes it as a signed BigInt). */
export function u64(v: bigint): bigint {
  return BigInt.asUintN(64, v);
}

/** A u64 file offset or size as a number, or null when no file can be that large. */
export function fileOffset(v: bigint): number | null {
  const u = u64(v);
  return u > BigInt(VFS_MAX_FILE_BYTES) ? null : Number(u);
}

/** Lookup flags: true when SYMLINK_FOLLOW; EINVAL for unknown bits. */
export function followFlag(flags: number): boolean {
  if ((flags & ~Lookupflags.SYMLINK_FOLLOW) !== 0) throw new WasiErrno(Errno.INVAL);
  return (flags & Lookupflags.SYMLINK_FOLLOW) !== 0;
}

/** Decode fst_flags with their timestamps; EINVAL for X and X_NOW together or unknown bits. */
export function timeChanges(atim: bigint, mtim: bigint, flags: number): [TimeChange, TimeChange] {
  const known = Fstflags.ATIM | Fstflags.ATIM_NOW | Fstflags.MTIM | Fstflags.MTIM_NOW;
  if ((flags & ~known) !== 0) throw new WasiErrno(Errno.INVAL);
  const one = (set: number, now: number, ns: bigint): TimeChange => {
    if ((flags & set) !== 0 && (flags & now) !== 0) throw new WasiErrno(Errno.INVAL);
    if ((flags & set) !== 0) return { kind: 'set', ns: u64(ns) };
    if ((flags & now) !== 0) return { kind: 'now' };
    return { kind: 'keep' };
  };
  return [one(Fstflags.ATIM, Fstflags.ATIM_NOW, atim), one(Fstflags.MTIM, Fstflags.MTIM_NOW, mtim)];
}
