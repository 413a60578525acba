import test from 'ava';
import { Errno } from '../../../libos-host/wasi/errno.js';
import { DIRENT_HEADER_BYTES } from '../../../libos-host/wasi/syscalls-fs.js';
import { Filetype, Oflags, RIGHTS_DIR_BASE, Rights } from '../../../libos-host/wasi/wasi-constants.js';
import type { FsTestHost } from './helpers/fs-host.js';
import { makeFsHost } from './helpers/fs-host.js';

interface Dirent { next: bigint; ino: bigint; type: number; name: string }

/** Parse the complete dirents of a fd_readdir buffer (a cut-off last one is dropped). */
function parse(h: FsTestHost, buf: number, used: number): Dirent[] {
  const out: Dirent[] = [];
  const dv = new DataView(h.memory.buffer);
  for (let off = 0; off + DIRENT_HEADER_BYTES <= used;) {
    const namlen = dv.getUint32(buf + off + 16, true);
    if (off + DIRENT_HEADER_BYTES + namlen > used) break;
    out.push({
      next: dv.getBigUint64(buf + off, true),
      ino: dv.getBigUint64(buf + off + 8, true),
      type: dv.getUint8(buf + off + 20),
      name: new TextDecoder().decode(h.read(buf + off + DIRENT_HEADER_BYTES, namlen)),
    });
    off += DIRENT_HEADER_BYTES + namlen;
  }
  return out;
}

/** One fd_readdir call: [errno, entries, bufused]. */
function readdir(h: FsTestHost, fd: number, bufLen: number, cookie: bigint): [number, Dirent[], number] {
  const buf = h.alloc(bufLen);
  const usedPtr = h.alloc(4);
  const errno = h.call('fd_readdir', fd, buf, bufLen, cookie, usedPtr);
  const used = h.u32(usedPtr);
  return [errno, errno === 0 ? parse(h, buf, used) : [], used];
}

/** Read a whole directory the way wasi-libc's readdir does: resume at cookies, grow when stuck. */
function readAll(h: FsTestHost, fd: number, bufLen: number): { names: string[]; calls: number } {
  const names: string[] = [];
  let cookie = 0n;
  let calls = 0;
  let len = bufLen;
  for (;;) {
    const [errno, entries, used] = readdir(h, fd, len, cookie);
    calls++;
    if (errno !== 0) throw new Error(`fd_readdir: errno ${errno}`);
    names.push(...entries.map((e) => e.name));
    if (used < len) return { names, calls };
    if (entries.length === 0) len *= 2;
    else cookie = entries[entries.length - 1].next;
  }
}

test('an empty directory lists . and .. as directories, and . carries its inode', (t) => {
  const h = makeFsHost();
  const [errno, entries, used] = readdir(h, h.root, 256, 0n);
  t.is(errno, Errno.SUCCESS);
  t.is(used, 2 * DIRENT_HEADER_BYTES + 3);
  t.deepEqual(entries.map((e) => [e.name, e.type, e.next]), [['.', Filetype.DIRECTORY, 1n], ['..', Filetype.DIRECTORY, 2n]]);
  t.is(entries[0].ino, BigInt(h.rootIno));
});

test('entries carry their type and inode, and a cookie resumes after an entry', (t) => {
  const h = makeFsHost();
  h.open('file', { oflags: Oflags.CREAT });
  h.call('path_create_directory', h.root, ...h.str('nested'));
  h.call('path_symlink', ...h.str('file'), h.root, ...h.str('link'));
  const [, entries] = readdir(h, h.root, 1024, 0n);
  t.deepEqual(entries.map((e) => [e.name, e.type]), [
    ['.', Filetype.DIRECTORY], ['..', Filetype.DIRECTORY], ['file', Filetype.REGULAR_FILE],
    ['nested', Filetype.DIRECTORY], ['link', Filetype.SYMBOLIC_LINK],
  ]);
  const st = h.alloc(64);
  h.call('path_filestat_get', h.root, 0, ...h.str('nested'), st);
  t.is(entries[3].ino, h.u64(st + 8));
  const [, rest] = readdir(h, h.root, 1024, entries[2].next);
  t.deepEqual(rest.map((e) => e.name), ['nested', 'link']);
  const [, none, used] = readdir(h, h.root, 1024, entries[4].next);
  t.deepEqual([none.length, used], [0, 0]);
  const [, nestedFd] = h.open('nested', { rights: Rights.FD_READDIR });
  const [, sub] = readdir(h, nestedFd, 1024, 0n);
  t.is(sub[1].ino, BigInt(h.rootIno), '.. of a subdirectory is its parent');
});

test('a full buffer is filled completely, the last entry cut, so bufused == buf_len', (t) => {
  const h = makeFsHost();
  h.open('abcdef', { oflags: Oflags.CREAT });
  // . (25) + .. (26) + 24-byte header + 6-byte name = 81 bytes; give 60.
  const [errno, entries, used] = readdir(h, h.root, 60, 0n);
  t.is(errno, Errno.SUCCESS);
  t.is(used, 60);
  t.deepEqual(entries.map((e) => e.name), ['.', '..']);
  // A buffer smaller than one header is filled with the start of the first header.
  const [, none, used2] = readdir(h, h.root, 10, 0n);
  t.deepEqual([none.length, used2], [0, 10]);
});

test('a large directory reads completely across many calls with a small buffer', (t) => {
  const h = makeFsHost();
  const expected = Array.from({ length: 300 }, (_, i) => `file.${i}`);
  for (const n of expected) t.is(h.open(n, { oflags: Oflags.CREAT })[0], Errno.SUCCESS);
  const { names, calls } = readAll(h, h.root, 128);
  t.deepEqual(names, ['.', '..', ...expected]);
  t.true(calls > 50, `took ${calls} calls`);
});

test('a multi-byte name is never split into a parsable entry; a growing buffer finds it', (t) => {
  const h = makeFsHost();
  const name = 'Действие';
  h.open(name, { oflags: Oflags.CREAT });
  const { names } = readAll(h, h.root, 1);
  t.deepEqual(names, ['.', '..', name]);
});

test('cookies stay valid when entries are added or removed between calls', (t) => {
  const h = makeFsHost();
  for (const n of ['a', 'b', 'c', 'd']) h.open(n, { oflags: Oflags.CREAT });
  const [, first] = readdir(h, h.root, 25 + 26 + 25 + 25, 0n); // exactly ., .., a, b
  t.deepEqual(first.map((e) => e.name), ['.', '..', 'a', 'b']);
  h.call('path_unlink_file', h.root, ...h.str('a'));
  h.call('path_unlink_file', h.root, ...h.str('c'));
  h.open('e', { oflags: Oflags.CREAT });
  const [, rest] = readdir(h, h.root, 1024, first[3].next);
  t.deepEqual(rest.map((e) => e.name), ['d', 'e'], 'no entry repeated, none skipped that still exists');
});

test('fd_readdir errors: ENOTDIR for non-directories, EBADF, ENOTCAPABLE, EFAULT', (t) => {
  const h = makeFsHost();
  const [, file] = h.open('f', { oflags: Oflags.CREAT });
  const out = h.alloc(4);
  const buf = h.alloc(64);
  t.is(h.call('fd_readdir', file, buf, 64, 0n, out), Errno.NOTDIR);
  t.is(h.call('fd_readdir', 1, buf, 64, 0n, out), Errno.NOTDIR);
  t.is(h.call('fd_readdir', 55, buf, 64, 0n, out), Errno.BADF);
  h.call('path_create_directory', h.root, ...h.str('d'));
  const [, noRight] = h.open('d', { rights: RIGHTS_DIR_BASE & ~Rights.FD_READDIR });
  t.is(h.call('fd_readdir', noRight, buf, 64, 0n, out), Errno.NOTCAPABLE);
  t.is(h.call('fd_readdir', h.root, 4 * 65536 - 10, 64, 0n, out), Errno.FAULT);
  t.is(h.call('fd_readdir', h.root, buf, 64, 0n, 4 * 65536), Errno.FAULT);
});

test('a removed directory still open lists only . and ..', (t) => {
  const h = makeFsHost();
  h.call('path_create_directory', h.root, ...h.str('gone'));
  const [, fd] = h.open('gone', { rights: RIGHTS_DIR_BASE });
  t.is(h.call('path_remove_directory', h.root, ...h.str('gone')), Errno.SUCCESS);
  const [errno, entries] = readdir(h, fd, 256, 0n);
  t.is(errno, Errno.SUCCESS);
  t.deepEqual(entries.map((e) => e.name), ['.', '..']);
  t.is(h.open('new', { dirFd: fd, oflags: Oflags.CREAT })[0], Errno.NOENT, 'nothing can be created in it');
});
