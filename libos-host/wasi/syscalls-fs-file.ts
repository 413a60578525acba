/**
 * The fd_* calls of WASI preview 1 that concern files and directories of the VFS. Other kinds of
 * fd get the errno POSIX gives for the same call (ESPIPE for seeking a stream, and so on).
 */
import { Errno, WasiErrno } from './errno.js';
import type { SyscallHost } from './syscall-host.js';
import { readAt, writeAt } from './syscalls-fs-io.js';
import { fileFd, fileOffset, requireRights, timeChanges, u64 } from './syscalls-fs-util.js';
import { VFS_MAX_FILE_BYTES } from './vfs-inode.js';
import { Advice, Fdflags, Preopentype, Rights, Whence } from './wasi-constants.js';

/** Size of a dirent header before its name (bytes): d_next u64, d_ino u64, d_namlen u32, d_type u8, pad. */
export const DIRENT_HEADER_BYTES = 24;
/** Size of a prestat (bytes): tag u8, pad, pr_name_len u32. */
export const PRESTAT_BYTES = 8;
/**
 * Prestat tag for a pre-opened listening socket. Not in the WASI preview 1 spec (which defines
 * only DIR = 0); wasi-libc's preopen scan ignores unknown tags and moves on to the next fd.
 */
export const PREOPENTYPE_WATERBEAR_SOCKET = 1;
const MAX_FILEDELTA = (1n << 63n) - 1n;

const encoder = new TextEncoder();

export function fileFdSyscalls(host: SyscallHost) {
  const { mem, fds, vfs } = host;
  return {
    fd_advise(fd: number, _offset: bigint, _len: bigint, advice: number): void {
      fileFd(host, fd, Rights.FD_ADVISE, Errno.BADF, Errno.SPIPE);
      if (advice < Advice.NORMAL || advice > Advice.NOREUSE) throw new WasiErrno(Errno.INVAL);
      // Advice about an in-memory file changes nothing.
    },

    fd_allocate(fd: number, offset: bigint, len: bigint): void {
      const f = fileFd(host, fd, Rights.FD_ALLOCATE, Errno.BADF, Errno.SPIPE);
      const end = u64(offset) + u64(len);
      if (u64(len) === 0n) throw new WasiErrno(Errno.INVAL);
      if (end > BigInt(VFS_MAX_FILE_BYTES)) throw new WasiErrno(Errno.FBIG);
      vfs.allocate(f.ino, Number(u64(offset)), Number(u64(len)));
    },

    fd_datasync(fd: number): void {
      syncable(host, fd, Rights.FD_DATASYNC);
    },

    fd_sync(fd: number): void {
      syncable(host, fd, Rights.FD_SYNC);
    },

    fd_filestat_set_size(fd: number, size: bigint): void {
      const f = fileFd(host, fd, Rights.FD_FILESTAT_SET_SIZE, Errno.ISDIR, Errno.INVAL);
      const n = fileOffset(size);
      if (n === null) throw new WasiErrno(Errno.FBIG);
      vfs.truncate(f.ino, n);
    },

    fd_filestat_set_times(fd: number, atim: bigint, mtim: bigint, fstFlags: number): void {
      const [a, m] = timeChanges(atim, mtim, fstFlags);
      const e = fds.get(fd);
      if (e.kind !== 'file' && e.kind !== 'dir') throw new WasiErrno(Errno.BADF);
      requireRights(e, Rights.FD_FILESTAT_SET_TIMES);
      vfs.setTimes(e.ino, a, m);
    },

    fd_pread(fd: number, iovs: number, iovsLen: number, offset: bigint, nreadPtr: number): void {
      const f = fileFd(host, fd, Rights.FD_READ | Rights.FD_SEEK, Errno.ISDIR, Errno.SPIPE);
      mem.check(nreadPtr, 4);
      const n = mem.fillIovecs(iovs, iovsLen, (views) => readAt(host, f.ino, u64(offset), views));
      mem.setU32(nreadPtr, n);
    },

    fd_pwrite(fd: number, iovs: number, iovsLen: number, offset: bigint, nwrittenPtr: number): void {
      const f = fileFd(host, fd, Rights.FD_WRITE | Rights.FD_SEEK, Errno.ISDIR, Errno.SPIPE);
      mem.check(nwrittenPtr, 4);
      // Linux (and wasmtime): pwrite on an O_APPEND file appends, ignoring the offset.
      const at = (f.fdflags & Fdflags.APPEND) !== 0 ? BigInt(vfs.sizeOf(f.ino)) : u64(offset);
      const n = writeAt(host, f.ino, at, mem.iovecs(iovs, iovsLen));
      mem.setU32(nwrittenPtr, n);
    },

    fd_prestat_get(fd: number, ptr: number): void {
      const e = fds.get(fd);
      // wasi-libc scans fds from 3 until EBADF (and aborts on any other error), so pre-opened
      // listeners, which come first (fd 3, 4, …), answer with a non-directory tag that it skips;
      // the directories after them are then still found.
      if (e.kind === 'listener') {
        mem.check(ptr, PRESTAT_BYTES);
        mem.bytes(ptr, PRESTAT_BYTES).fill(0);
        mem.setU8(ptr, PREOPENTYPE_WATERBEAR_SOCKET);
        return;
      }
      if (e.kind !== 'dir' || e.preopen === null) throw new WasiErrno(Errno.BADF);
      mem.check(ptr, PRESTAT_BYTES);
      mem.bytes(ptr, PRESTAT_BYTES).fill(0);
      mem.setU8(ptr, Preopentype.DIR);
      mem.setU32(ptr + 4, encoder.encode(e.preopen).length);
    },

    fd_prestat_dir_name(fd: number, pathPtr: number, pathLen: number): void {
      const e = fds.get(fd);
      // wasmtime (like the legacy implementation) answers ENOTDIR for an fd that is not a pre-open.
      if (e.kind !== 'dir' || e.preopen === null) throw new WasiErrno(Errno.NOTDIR);
      const name = encoder.encode(e.preopen);
      if (name.length > pathLen) throw new WasiErrno(Errno.NAMETOOLONG);
      mem.write(pathPtr, name);
    },

    fd_readdir(fd: number, buf: number, bufLen: number, cookie: bigint, bufusedPtr: number): void {
      const e = fds.get(fd);
      if (e.kind !== 'dir') throw new WasiErrno(Errno.NOTDIR);
      requireRights(e, Rights.FD_READDIR);
      mem.check(bufusedPtr, 4);
      mem.check(buf, bufLen);
      const header = new Uint8Array(DIRENT_HEADER_BYTES);
      const hv = new DataView(header.buffer);
      let used = 0;
      // Fill the buffer completely, cutting the last entry if need be: bufused == buf_len tells the
      // guest (wasi-libc's readdir) that more may follow and to call again with a larger buffer.
      for (const ent of vfs.readdir(e.ino, u64(cookie))) {
        const name = encoder.encode(ent.name);
        hv.setBigUint64(0, ent.next, true);
        hv.setBigUint64(8, BigInt(ent.ino), true);
        hv.setUint32(16, name.length, true);
        hv.setUint8(20, ent.filetype);
        const h = Math.min(DIRENT_HEADER_BYTES, bufLen - used);
        mem.write(buf + used, header.subarray(0, h));
        used += h;
        if (used === bufLen) break;
        const nb = Math.min(name.length, bufLen - used);
        mem.write(buf + used, name.subarray(0, nb));
        used += nb;
        if (used === bufLen) break;
      }
      mem.setU32(bufusedPtr, used);
    },

    fd_seek(fd: number, offset: bigint, whence: number, newoffsetPtr: number): void {
      const e = fds.get(fd);
      // wasmtime: seeking a directory is EBADF; consoles and sockets cannot seek (ESPIPE).
      if (e.kind === 'dir') throw new WasiErrno(Errno.BADF);
      if (e.kind !== 'file') throw new WasiErrno(Errno.SPIPE);
      const delta = BigInt.asIntN(64, offset);
      // lseek(fd, 0, SEEK_CUR) is how C asks for the offset: it needs only the tell right.
      requireRights(e, whence === Whence.CUR && delta === 0n ? Rights.FD_TELL : Rights.FD_SEEK);
      let pos: bigint;
      switch (whence) {
        case Whence.SET: pos = delta; break;
        case Whence.CUR: pos = e.offset + delta; break;
        case Whence.END: pos = BigInt(vfs.sizeOf(e.ino)) + delta; break;
        default: throw new WasiErrno(Errno.INVAL);
      }
      if (pos < 0n) throw new WasiErrno(Errno.INVAL);
      if (pos > MAX_FILEDELTA) throw new WasiErrno(Errno.OVERFLOW);
      mem.check(newoffsetPtr, 8);
      e.offset = pos;
      mem.setU64(newoffsetPtr, pos);
    },

    fd_tell(fd: number, offsetPtr: number): void {
      const e = fds.get(fd);
      if (e.kind === 'dir') throw new WasiErrno(Errno.BADF);
      if (e.kind !== 'file') throw new WasiErrno(Errno.SPIPE);
      requireRights(e, Rights.FD_TELL);
      mem.setU64(offsetPtr, e.offset);
    },
  };
}

/**
 * fd_sync/fd_datasync: files and directories hold nothing to flush (the VFS lives in memory and
 * reaches the backups through checkpoints), so the call only checks the fd. A directory needs
 * FD_SYNC for both, since directories never carry FD_DATASYNC. Streams answer EINVAL, as fsync does.
 */
function syncable(host: SyscallHost, fd: number, right: bigint): void {
  const e = host.fds.get(fd);
  if (e.kind === 'file') requireRights(e, right);
  else if (e.kind === 'dir') requireRights(e, Rights.FD_SYNC);
  else throw new WasiErrno(Errno.INVAL);
}
