/**
 * File and directory fd helpers that the generic fd calls (syscalls-fd.ts) use for VFS-backed
 * descriptors, and the installation of pre-opened directories.
 */
import type { HostTreeEntry } from '../abi/host-abi.js';
import { Errno, WasiErrno } from './errno.js';
import type { DirFd, FileFd } from './fd-table.js';
import type { SyscallHost } from './syscall-host.js';
import { fileOffset } from './syscalls-fs-util.js';
import { Fdflags, RIGHTS_DIR_BASE, RIGHTS_DIR_INHERITING } from './wasi-constants.js';

/** Size of a WASI filestat (bytes). */
export const FILESTAT_BYTES = 64;

/**
 * Read from file fd `fd` at its offset into `iovs` (in order, stopping at end of file); advances
 * the offset and returns the bytes read. Rights are the caller's to check.
 */
export function readFile(host: SyscallHost, fd: FileFd, iovs: Uint8Array[]): number {
  return readAt(host, fd.ino, fd.offset, iovs, (n) => { fd.offset += BigInt(n); });
}

/** Read `iovs` from file `ino` at `offset` without touching any fd offset (fd_pread). */
export function readAt(host: SyscallHost, ino: number, offset: bigint, iovs: Uint8Array[], done?: (n: number) => void): number {
  let pos = fileOffset(offset);
  if (pos === null) return 0;
  let total = 0;
  for (const iov of iovs) {
    const n = host.vfs.read(ino, pos, iov);
    total += n;
    pos += n;
    if (n < iov.length) break;
  }
  done?.(total);
  return total;
}

/**
 * Write `iovs` to file fd `fd` at its offset — at the end of the file when it has FDFLAGS_APPEND —
 * and advance the offset. A full byte budget yields a short count, or ENOSPC when nothing could be
 * written; EFBIG past the largest file size. Rights are the caller's to check.
 */
export function writeFile(host: SyscallHost, fd: FileFd, iovs: Uint8Array[]): number {
  const append = (fd.fdflags & Fdflags.APPEND) !== 0;
  const start = append ? BigInt(host.vfs.sizeOf(fd.ino)) : fd.offset;
  return writeAt(host, fd.ino, start, iovs, (end) => { fd.offset = end; });
}

/**
 * Write `iovs` to file `ino` at `offset` (fd_pwrite; the caller applies APPEND). Calls `done`
 * with the offset after the last byte written when anything was written.
 */
export function writeAt(host: SyscallHost, ino: number, offset: bigint, iovs: Uint8Array[], done?: (end: bigint) => void): number {
  const wanted = iovs.reduce((n, v) => n + v.length, 0);
  if (wanted === 0) return 0;
  let pos = fileOffset(offset);
  if (pos === null) throw new WasiErrno(Errno.FBIG);
  let total = 0;
  for (const iov of iovs) {
    if (iov.length === 0) continue;
    let n: number;
    try {
      n = host.vfs.write(ino, pos, iov);
    } catch (err) {
      // POSIX: a write that made progress reports it; the error comes with the next call.
      if (err instanceof WasiErrno && total > 0) break;
      throw err;
    }
    total += n;
    pos += n;
    if (n < iov.length) break;
  }
  done?.(BigInt(pos));
  return total;
}

/** Write the 64-byte filestat of inode `ino` at guest address `ptr` (EFAULT when out of bounds). */
export function writeFilestat(host: SyscallHost, ptr: number, ino: number): void {
  const { mem } = host;
  mem.check(ptr, FILESTAT_BYTES);
  const st = host.vfs.stat(ino);
  mem.setU64(ptr, st.dev);
  mem.setU64(ptr + 8, BigInt(st.ino));
  mem.setU8(ptr + 16, st.filetype);
  mem.bytes(ptr + 17, 7).fill(0);
  mem.setU64(ptr + 24, BigInt(st.nlink));
  mem.setU64(ptr + 32, BigInt(st.size));
  mem.setU64(ptr + 40, st.atimeNs);
  mem.setU64(ptr + 48, st.mtimeNs);
  mem.setU64(ptr + 56, st.ctimeNs);
}

/**
 * Release the inode reference held by a file or directory fd; call it once the entry has left the
 * fd table (fd_close, fd_renumber's target). An unlinked file stays readable through its other
 * fds and is freed when the last one closes.
 */
export function closeFileFd(host: SyscallHost, entry: FileFd | DirFd): void {
  host.vfs.release(entry.ino);
}

/**
 * Install a pre-opened directory at the lowest free fd and return it: a copy of `tree` (read from
 * the host by the platform), or an empty directory when `tree` is null. The guest sees it through
 * fd_prestat_get with name `guestPath`. Throws WB_CONFIG_INVALID for a tree the VFS cannot hold.
 */
export function openPreopen(host: SyscallHost, guestPath: string, tree: HostTreeEntry | null): number {
  const ino = host.vfs.addPreopen(tree);
  host.vfs.retain(ino);
  return host.fds.allocate({
    kind: 'dir', ino, preopen: guestPath, fdflags: 0, rightsBase: RIGHTS_DIR_BASE, rightsInheriting: RIGHTS_DIR_INHERITING,
  });
}
