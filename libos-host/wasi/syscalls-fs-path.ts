/**
 * The path_* calls of WASI preview 1. Every path is relative to a directory fd and resolved by
 * vfs-path.ts under the capability rules; errnos follow POSIX *at() calls as wasmtime reports them
 * on Linux.
 */
import { Errno, WasiErrno } from './errno.js';
import type { DirFd, FileFd } from './fd-table.js';
import { MAX_OPEN_FDS } from './fd-table.js';
import type { SyscallHost } from './syscall-host.js';
import { writeFilestat } from './syscalls-fs-io.js';
import { dirFd, followFlag, readPath, requireRights, timeChanges, u64 } from './syscalls-fs-util.js';
import { PATH_ESCAPE_ERRNO } from './vfs-path.js';
import { Fdflags, Oflags, RIGHTS_DIR_BASE, RIGHTS_FILE_BASE, Rights } from './wasi-constants.js';

const encoder = new TextEncoder();
const KNOWN_OFLAGS = Oflags.CREAT | Oflags.DIRECTORY | Oflags.EXCL | Oflags.TRUNC;
const KNOWN_FDFLAGS = Fdflags.APPEND | Fdflags.DSYNC | Fdflags.NONBLOCK | Fdflags.RSYNC | Fdflags.SYNC;

export function pathSyscalls(host: SyscallHost) {
  const { mem, fds, vfs } = host;
  return {
    path_create_directory(fd: number, pathPtr: number, pathLen: number): void {
      const dir = dirFd(host, fd, Rights.PATH_CREATE_DIRECTORY);
      const r = vfs.resolve(dir.ino, readPath(host, pathPtr, pathLen), false, false);
      if (r.dot || r.ino !== null) throw new WasiErrno(Errno.EXIST);
      vfs.mkdir(r.parent, r.name);
    },

    path_filestat_get(fd: number, flags: number, pathPtr: number, pathLen: number, statPtr: number): void {
      const dir = dirFd(host, fd, Rights.PATH_FILESTAT_GET);
      const follow = followFlag(flags);
      mem.check(statPtr, 64);
      const r = vfs.resolve(dir.ino, readPath(host, pathPtr, pathLen), follow);
      if (r.ino === null) throw new WasiErrno(Errno.NOENT);
      writeFilestat(host, statPtr, r.ino);
    },

    path_filestat_set_times(fd: number, flags: number, pathPtr: number, pathLen: number, atim: bigint, mtim: bigint, fstFlags: number): void {
      const dir = dirFd(host, fd, Rights.PATH_FILESTAT_SET_TIMES);
      const follow = followFlag(flags);
      const [a, m] = timeChanges(atim, mtim, fstFlags);
      const r = vfs.resolve(dir.ino, readPath(host, pathPtr, pathLen), follow);
      if (r.ino === null) throw new WasiErrno(Errno.NOENT);
      vfs.setTimes(r.ino, a, m);
    },

    path_link(oldFd: number, oldFlags: number, oldPtr: number, oldLen: number, newFd: number, newPtr: number, newLen: number): void {
      const src = dirFd(host, oldFd, Rights.PATH_LINK_SOURCE);
      const dst = dirFd(host, newFd, Rights.PATH_LINK_TARGET);
      // wasmtime refuses SYMLINK_FOLLOW here: a hard link always names the symlink itself.
      if (followFlag(oldFlags)) throw new WasiErrno(Errno.INVAL);
      const s = vfs.resolve(src.ino, readPath(host, oldPtr, oldLen), false, false);
      if (s.ino === null) throw new WasiErrno(Errno.NOENT);
      if (s.dot || vfs.kindOf(s.ino) === 'dir') throw new WasiErrno(Errno.PERM);
      const d = vfs.resolve(dst.ino, readPath(host, newPtr, newLen), false, false);
      if (d.dot || d.ino !== null) throw new WasiErrno(Errno.EXIST);
      if (d.trailingSlash) throw new WasiErrno(Errno.NOENT);
      vfs.link(d.parent, d.name, s.ino);
    },

    path_open(fd: number, dirflags: number, pathPtr: number, pathLen: number, oflags: number,
      rightsBase: bigint, rightsInheriting: bigint, fdflags: number, fdPtr: number): void {
      const dir = dirFd(host, fd, Rights.PATH_OPEN);
      const follow = followFlag(dirflags);
      if ((oflags & ~KNOWN_OFLAGS) !== 0 || (fdflags & ~KNOWN_FDFLAGS) !== 0) throw new WasiErrno(Errno.INVAL);
      const creat = (oflags & Oflags.CREAT) !== 0;
      const excl = (oflags & Oflags.EXCL) !== 0;
      const wantDir = (oflags & Oflags.DIRECTORY) !== 0;
      const trunc = (oflags & Oflags.TRUNC) !== 0;
      // Linux refuses O_CREAT|O_DIRECTORY (EINVAL): open cannot create directories.
      if (creat && wantDir) throw new WasiErrno(Errno.INVAL);
      if (creat) requireRights(dir, Rights.PATH_CREATE_FILE);
      if (trunc) requireRights(dir, Rights.PATH_FILESTAT_SET_SIZE);
      const base = u64(rightsBase);
      mem.check(fdPtr, 4);
      if (fds.size >= MAX_OPEN_FDS) throw new WasiErrno(Errno.MFILE);
      const path = readPath(host, pathPtr, pathLen);
      // O_CREAT|O_EXCL never follows a final symlink: an existing link, even dangling, is EEXIST.
      const r = vfs.resolve(dir.ino, path, follow && !(creat && excl));
      let ino: number;
      if (r.ino === null) {
        if (!creat) throw new WasiErrno(Errno.NOENT);
        if (r.trailingSlash) throw new WasiErrno(Errno.ISDIR);
        ino = vfs.createFile(r.parent, r.name);
      } else {
        ino = r.ino;
        if (creat && excl) throw new WasiErrno(Errno.EXIST);
        const kind = vfs.kindOf(ino);
        // A final symlink reached without following it: O_NOFOLLOW semantics.
        if (kind === 'symlink') throw new WasiErrno(wantDir ? Errno.NOTDIR : Errno.LOOP);
        if (wantDir && kind !== 'dir') throw new WasiErrno(Errno.NOTDIR);
        if (kind === 'dir' && (trunc || (base & Rights.FD_WRITE) !== 0n)) throw new WasiErrno(Errno.ISDIR);
        if (kind === 'file' && trunc) vfs.truncate(ino, 0);
      }
      // Rights are masked (as wasmtime does), never refused: wasi-libc asks for all it may use.
      const inheriting = u64(rightsInheriting) & dir.rightsInheriting;
      const entry: FileFd | DirFd = vfs.kindOf(ino) === 'dir'
        ? { kind: 'dir', ino, preopen: null, fdflags, rightsBase: base & dir.rightsInheriting & RIGHTS_DIR_BASE, rightsInheriting: inheriting }
        : { kind: 'file', ino, offset: 0n, fdflags, rightsBase: base & dir.rightsInheriting & RIGHTS_FILE_BASE, rightsInheriting: inheriting };
      vfs.retain(ino);
      const newFd = fds.allocate(entry);
      mem.setU32(fdPtr, newFd);
    },

    path_readlink(fd: number, pathPtr: number, pathLen: number, buf: number, bufLen: number, bufusedPtr: number): void {
      const dir = dirFd(host, fd, Rights.PATH_READLINK);
      mem.check(bufusedPtr, 4);
      mem.check(buf, bufLen);
      const r = vfs.resolve(dir.ino, readPath(host, pathPtr, pathLen), false);
      if (r.ino === null) throw new WasiErrno(Errno.NOENT);
      // Silently truncated to the buffer, like readlink(2) and wasmtime.
      const target = encoder.encode(vfs.readlink(r.ino)).subarray(0, bufLen);
      mem.write(buf, target);
      mem.setU32(bufusedPtr, target.length);
    },

    path_remove_directory(fd: number, pathPtr: number, pathLen: number): void {
      const dir = dirFd(host, fd, Rights.PATH_REMOVE_DIRECTORY);
      const r = vfs.resolve(dir.ino, readPath(host, pathPtr, pathLen), false, false);
      // rmdir("x/.") is EINVAL and rmdir("x/..") ENOTEMPTY on Linux.
      if (r.dot) throw new WasiErrno(r.name === '.' ? Errno.INVAL : Errno.NOTEMPTY);
      if (r.ino === null) throw new WasiErrno(Errno.NOENT);
      vfs.rmdir(r.parent, r.name);
    },

    path_rename(oldFd: number, oldPtr: number, oldLen: number, newFd: number, newPtr: number, newLen: number): void {
      const src = dirFd(host, oldFd, Rights.PATH_RENAME_SOURCE);
      const dst = dirFd(host, newFd, Rights.PATH_RENAME_TARGET);
      const s = vfs.resolve(src.ino, readPath(host, oldPtr, oldLen), false, false);
      const d = vfs.resolve(dst.ino, readPath(host, newPtr, newLen), false, false);
      if (s.dot || d.dot) throw new WasiErrno(Errno.INVAL);
      if (s.ino === null) throw new WasiErrno(Errno.NOENT);
      // A trailing slash on either name is allowed only when a directory moves.
      if ((s.trailingSlash || d.trailingSlash) && vfs.kindOf(s.ino) !== 'dir') throw new WasiErrno(Errno.NOTDIR);
      vfs.rename(s.parent, s.name, d.parent, d.name);
    },

    path_symlink(oldPtr: number, oldLen: number, fd: number, newPtr: number, newLen: number): void {
      const dir = dirFd(host, fd, Rights.PATH_SYMLINK);
      const target = readPath(host, oldPtr, oldLen);
      // cap-std refuses absolute link contents: they could never be followed inside the sandbox.
      if (target.startsWith('/')) throw new WasiErrno(PATH_ESCAPE_ERRNO);
      const d = vfs.resolve(dir.ino, readPath(host, newPtr, newLen), false, false);
      if (d.dot || d.ino !== null) throw new WasiErrno(Errno.EXIST);
      if (d.trailingSlash) throw new WasiErrno(Errno.NOENT);
      vfs.symlink(d.parent, d.name, target);
    },

    path_unlink_file(fd: number, pathPtr: number, pathLen: number): void {
      const dir = dirFd(host, fd, Rights.PATH_UNLINK_FILE);
      const r = vfs.resolve(dir.ino, readPath(host, pathPtr, pathLen), false, false);
      if (r.dot) throw new WasiErrno(Errno.ISDIR);
      if (r.ino === null) throw new WasiErrno(Errno.NOENT);
      vfs.unlink(r.parent, r.name);
    },
  };
}
