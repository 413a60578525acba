import { Errno, WasiErrno } from './errno.js';
import type { FdEntry } from './fd-table.js';
import { Fdflags, Filetype, Rights } from './wasi-constants.js';
import { guardSyscalls } from './syscall-guard.js';
import type { SyscallHost, SyscallTable } from './syscall-host.js';
import { readStream, writeStream } from './stream-io.js';
import { closeFileFd, readFile, writeFile, writeFilestat } from './syscalls-fs.js';

/** WASI filetype of an fd entry. */
export function filetypeOf(e: FdEntry): number {
  switch (e.kind) {
    case 'stdio': return Filetype.CHARACTER_DEVICE;
    case 'file': return Filetype.REGULAR_FILE;
    case 'dir': return Filetype.DIRECTORY;
    case 'listener':
    case 'socket': return Filetype.SOCKET_STREAM;
  }
}

/** Release whatever an fd entry holds (ABI stream, file reference). */
export function releaseFd(host: SyscallHost, e: FdEntry): void {
  switch (e.kind) {
    case 'file':
    case 'dir': closeFileFd(host, e); break;
    case 'listener': host.abi.close(e.handle); break;
    case 'socket': if (e.handle !== null) host.abi.close(e.handle); break;
    case 'stdio': host.abi.close(e.handle); break;
  }
}

/** fd_read/fd_write and the fd calls that apply to every kind of descriptor. */
export function fdSyscalls(host: SyscallHost): SyscallTable {
  const { mem, fds } = host;
  return guardSyscalls({
    fd_read(fd: number, iovs: number, iovsLen: number, nreadPtr: number) {
      const e = fds.requireRights(fd, Rights.FD_READ);
      if (e.kind === 'dir') throw new WasiErrno(Errno.ISDIR);
      if (e.kind === 'listener') throw new WasiErrno(Errno.NOTCONN);
      const n = mem.fillIovecs(iovs, iovsLen, (views) => (e.kind === 'file' ? readFile(host, e, views) : readStream(host, e, views)));
      mem.setU32(nreadPtr, n);
    },
    fd_write(fd: number, iovs: number, iovsLen: number, nwrittenPtr: number) {
      const e = fds.requireRights(fd, Rights.FD_WRITE);
      const views = mem.iovecs(iovs, iovsLen);
      let n: number;
      switch (e.kind) {
        case 'file': n = writeFile(host, e, views); break;
        case 'stdio':
        case 'socket': n = writeStream(host, e, views); break;
        case 'dir': throw new WasiErrno(Errno.ISDIR);
        case 'listener': throw new WasiErrno(Errno.NOTCONN);
      }
      mem.setU32(nwrittenPtr, n);
    },
    fd_close(fd: number) {
      releaseFd(host, fds.remove(fd));
    },
    fd_fdstat_get(fd: number, statPtr: number) {
      const e = fds.get(fd);
      mem.check(statPtr, 24);
      mem.setU8(statPtr, filetypeOf(e));
      mem.setU8(statPtr + 1, 0);
      mem.setU16(statPtr + 2, e.fdflags);
      mem.setU32(statPtr + 4, 0);
      mem.setU64(statPtr + 8, e.rightsBase);
      mem.setU64(statPtr + 16, e.rightsInheriting);
    },
    fd_fdstat_set_flags(fd: number, flags: number) {
      const e = fds.requireRights(fd, Rights.FD_FDSTAT_SET_FLAGS);
      const known = Fdflags.APPEND | Fdflags.DSYNC | Fdflags.NONBLOCK | Fdflags.RSYNC | Fdflags.SYNC;
      if ((flags & ~known) !== 0) throw new WasiErrno(Errno.INVAL);
      // APPEND and the sync flags mean something only for files; sockets and consoles take NONBLOCK.
      if (e.kind !== 'file' && (flags & ~Fdflags.NONBLOCK) !== 0) throw new WasiErrno(Errno.INVAL);
      e.fdflags = flags;
    },
    fd_fdstat_set_rights(fd: number, base: bigint, inheriting: bigint) {
      const e = fds.get(fd);
      // Rights can only be dropped, never gained.
      if ((base & ~e.rightsBase) !== 0n || (inheriting & ~e.rightsInheriting) !== 0n) throw new WasiErrno(Errno.NOTCAPABLE);
      e.rightsBase = base;
      e.rightsInheriting = inheriting;
    },
    fd_filestat_get(fd: number, statPtr: number) {
      const e = fds.requireRights(fd, Rights.FD_FILESTAT_GET);
      if (e.kind === 'file' || e.kind === 'dir') { writeFilestat(host, statPtr, e.ino); return; }
      mem.check(statPtr, 64);
      mem.bytes(statPtr, 64).fill(0);
      mem.setU8(statPtr + 16, filetypeOf(e));
      mem.setU64(statPtr + 24, 1n);
    },
    fd_renumber(from: number, to: number) {
      const src = fds.get(from);
      const dst = fds.get(to);
      if (from === to) return;
      releaseFd(host, dst);
      fds.remove(from);
      fds.set(to, src);
    },
  });
}
