import test from 'ava';
import { Errno } from '../../../libos-host/wasi/errno.js';
import { closeFileFd, readFile, writeFile, writeFilestat } from '../../../libos-host/wasi/syscalls-fs.js';
import { VFS_MAX_FILE_BYTES } from '../../../libos-host/wasi/vfs-inode.js';
import {
  Advice, Fdflags, Filetype, Fstflags, Oflags, RIGHTS_SOCKET_BASE, Rights, Whence,
} from '../../../libos-host/wasi/wasi-constants.js';
import type { FsTestHost } from './helpers/fs-host.js';
import { makeFsHost, T0_NS, tree, utf8 } from './helpers/fs-host.js';

/** Out of bounds for the test memory (4 pages). */
const BAD_PTR = 4 * 65536 - 2;

/** Create `path` with `content` and return an open read/write fd on it. */
function fileWith(h: FsTestHost, path: string, content: string | Uint8Array, opts: { fdflags?: number; rights?: bigint } = {}): number {
  const [errno, fd] = h.open(path, { oflags: Oflags.CREAT, fdflags: opts.fdflags, rights: opts.rights });
  if (errno !== 0) throw new Error(`open ${path}: errno ${errno}`);
  const data = typeof content === 'string' ? utf8(content) : content;
  if (data.length > 0) h.call('fd_pwrite', fd, ...h.iovs([data]), 0n, h.alloc(4));
  return fd;
}

function socketFd(h: FsTestHost): number {
  return h.fds.allocate({ kind: 'socket', handle: 9, peer: '127.0.0.1:1', readShut: false, writeShut: false, held: null, fdflags: 0, rightsBase: RIGHTS_SOCKET_BASE, rightsInheriting: 0n });
}

function close(h: FsTestHost, fd: number): void {
  const e = h.fds.remove(fd);
  if (e.kind === 'file' || e.kind === 'dir') closeFileFd(h.host, e);
}

test('fd_advise accepts valid advice on files and refuses bad advice, directories, streams and closed fds', (t) => {
  const h = makeFsHost();
  const fd = fileWith(h, 'f', 'abc');
  t.is(h.call('fd_advise', fd, 0n, 3n, Advice.SEQUENTIAL), Errno.SUCCESS);
  t.is(h.call('fd_advise', fd, 0n, 3n, 6), Errno.INVAL);
  t.is(h.call('fd_advise', h.root, 0n, 0n, Advice.NORMAL), Errno.BADF);
  t.is(h.call('fd_advise', 1, 0n, 0n, Advice.NORMAL), Errno.SPIPE);
  t.is(h.call('fd_advise', 77, 0n, 0n, Advice.NORMAL), Errno.BADF);
  const [, noRights] = h.open('f', { rights: Rights.FD_READ });
  t.is(h.call('fd_advise', noRights, 0n, 0n, Advice.NORMAL), Errno.NOTCAPABLE);
});

test('fd_allocate grows a file with zeros, never shrinks it, and reports ENOSPC, EINVAL, EFBIG', (t) => {
  const h = makeFsHost({ maxBytes: 1000 });
  const fd = fileWith(h, 'f', 'abc');
  const ino = h.fileEntry(fd).ino;
  t.is(h.call('fd_allocate', fd, 10n, 90n), Errno.SUCCESS);
  t.is(h.vfs.sizeOf(ino), 100);
  t.is(h.call('fd_allocate', fd, 0n, 5n), Errno.SUCCESS);
  t.is(h.vfs.sizeOf(ino), 100, 'allocating inside the file changes nothing');
  t.is(h.call('fd_allocate', fd, 0n, 0n), Errno.INVAL);
  t.is(h.call('fd_allocate', fd, 0n, 2000n), Errno.NOSPC);
  t.is(h.call('fd_allocate', fd, BigInt(VFS_MAX_FILE_BYTES), 1n), Errno.FBIG);
  t.is(h.call('fd_allocate', h.root, 0n, 1n), Errno.BADF);
  t.is(h.call('fd_allocate', socketFd(h), 0n, 1n), Errno.SPIPE);
});

test('fd_sync and fd_datasync succeed on files and directories, EINVAL on streams, EBADF when closed', (t) => {
  const h = makeFsHost();
  const fd = fileWith(h, 'f', 'x');
  for (const call of ['fd_sync', 'fd_datasync']) {
    t.is(h.call(call, fd), Errno.SUCCESS, call);
    t.is(h.call(call, h.root), Errno.SUCCESS, `${call} on a directory`);
    t.is(h.call(call, 1), Errno.INVAL, `${call} on stdout`);
    t.is(h.call(call, socketFd(h)), Errno.INVAL, `${call} on a socket`);
    t.is(h.call(call, 99), Errno.BADF);
  }
  const [, ro] = h.open('f', { rights: Rights.FD_READ });
  t.is(h.call('fd_sync', ro), Errno.NOTCAPABLE);
  t.is(h.call('fd_datasync', ro), Errno.NOTCAPABLE);
});

test('fd_filestat_set_size truncates and extends; errors for directories, streams, rights, budget', (t) => {
  const h = makeFsHost({ maxBytes: 100 });
  const fd = fileWith(h, 'f', 'hello world');
  const ino = h.fileEntry(fd).ino;
  t.is(h.call('fd_filestat_set_size', fd, 5n), Errno.SUCCESS);
  t.is(h.vfs.sizeOf(ino), 5);
  t.is(h.call('fd_filestat_set_size', fd, 50n), Errno.SUCCESS);
  const [iov, n, [buf]] = h.outIovs([50]);
  t.is(h.call('fd_pread', fd, iov, n, 0n, h.alloc(4)), Errno.SUCCESS);
  t.deepEqual(h.read(buf, 8), Uint8Array.of(...utf8('hello'), 0, 0, 0));
  t.is(h.call('fd_filestat_set_size', fd, 101n), Errno.NOSPC);
  t.is(h.call('fd_filestat_set_size', fd, -1n), Errno.FBIG, 'u64 max');
  t.is(h.call('fd_filestat_set_size', h.root, 0n), Errno.ISDIR);
  t.is(h.call('fd_filestat_set_size', 0, 0n), Errno.INVAL);
  const [, ro] = h.open('f', { rights: Rights.FD_READ });
  t.is(h.call('fd_filestat_set_size', ro, 0n), Errno.NOTCAPABLE);
});

test('fd_filestat_set_times sets, uses now, keeps, and refuses contradictory flags', (t) => {
  const h = makeFsHost();
  const fd = fileWith(h, 'f', '');
  const ino = h.fileEntry(fd).ino;
  h.clock.ns = T0_NS + 50n;
  t.is(h.call('fd_filestat_set_times', fd, 11n, 22n, Fstflags.ATIM | Fstflags.MTIM), Errno.SUCCESS);
  t.deepEqual([h.vfs.stat(ino).atimeNs, h.vfs.stat(ino).mtimeNs, h.vfs.stat(ino).ctimeNs], [11n, 22n, T0_NS + 50n]);
  h.clock.ns = T0_NS + 60n;
  t.is(h.call('fd_filestat_set_times', fd, 0n, 0n, Fstflags.MTIM_NOW), Errno.SUCCESS);
  t.deepEqual([h.vfs.stat(ino).atimeNs, h.vfs.stat(ino).mtimeNs], [11n, T0_NS + 60n]);
  t.is(h.call('fd_filestat_set_times', fd, 0n, 0n, Fstflags.ATIM | Fstflags.ATIM_NOW), Errno.INVAL);
  t.is(h.call('fd_filestat_set_times', fd, 0n, 0n, Fstflags.MTIM | Fstflags.MTIM_NOW), Errno.INVAL);
  t.is(h.call('fd_filestat_set_times', fd, 0n, 0n, 16), Errno.INVAL);
  t.is(h.vfs.stat(ino).mtimeNs, T0_NS + 60n, 'a refused call changes nothing');
  t.is(h.call('fd_filestat_set_times', h.root, 5n, 5n, Fstflags.ATIM), Errno.SUCCESS, 'directories too');
  t.is(h.vfs.stat(h.rootIno).atimeNs, 5n);
  t.is(h.call('fd_filestat_set_times', 1, 0n, 0n, Fstflags.ATIM_NOW), Errno.BADF);
  const [, ro] = h.open('f', { rights: Rights.FD_READ });
  t.is(h.call('fd_filestat_set_times', ro, 0n, 0n, Fstflags.ATIM_NOW), Errno.NOTCAPABLE);
});

test('fd_pread and fd_pwrite use their offset, leave the fd offset alone, and scatter over iovecs', (t) => {
  const h = makeFsHost();
  const fd = fileWith(h, 'f', '');
  const nw = h.alloc(4);
  t.is(h.call('fd_pwrite', fd, ...h.iovs([utf8('01'), utf8('23')]), 0n, nw), Errno.SUCCESS);
  t.is(h.u32(nw), 4);
  t.is(h.call('fd_pwrite', fd, ...h.iovs([utf8('AB')]), 2n, nw), Errno.SUCCESS);
  t.is(h.fileEntry(fd).offset, 0n);
  const [iov, n, [b1, b2]] = h.outIovs([3, 3]);
  const nr = h.alloc(4);
  t.is(h.call('fd_pread', fd, iov, n, 1n, nr), Errno.SUCCESS);
  t.is(h.u32(nr), 3);
  t.deepEqual([...h.read(b1, 3)], [...utf8('1AB')]);
  t.deepEqual([...h.read(b2, 3)], [0, 0, 0]);
  t.is(h.call('fd_pread', fd, iov, n, 100n, nr), Errno.SUCCESS);
  t.is(h.u32(nr), 0, 'reading past the end gives 0 bytes');
  // A zero-length pwrite past the end changes nothing; a one-byte one extends the file.
  t.is(h.call('fd_pwrite', fd, ...h.iovs([new Uint8Array(0)]), 50n, nw), Errno.SUCCESS);
  t.is(h.vfs.sizeOf(h.fileEntry(fd).ino), 4);
  t.is(h.call('fd_pwrite', fd, ...h.iovs([utf8('z')]), 50n, nw), Errno.SUCCESS);
  t.is(h.vfs.sizeOf(h.fileEntry(fd).ino), 51);
});

test('fd_pwrite on an APPEND fd appends whatever the offset (Linux semantics)', (t) => {
  const h = makeFsHost();
  const fd = fileWith(h, 'f', '', { fdflags: Fdflags.APPEND });
  const nw = h.alloc(4);
  t.is(h.call('fd_pwrite', fd, ...h.iovs([utf8('a')]), 50n, nw), Errno.SUCCESS);
  t.is(h.call('fd_pwrite', fd, ...h.iovs([utf8('b')]), 0n, nw), Errno.SUCCESS);
  t.is(h.vfs.sizeOf(h.fileEntry(fd).ino), 2);
});

test('fd_pread/fd_pwrite errors: directories, streams, rights, EFAULT, ENOSPC', (t) => {
  const h = makeFsHost({ maxBytes: 8 });
  const fd = fileWith(h, 'f', '12345678');
  const [iov, n] = h.outIovs([4]);
  const out = h.alloc(4);
  t.is(h.call('fd_pread', h.root, iov, n, 0n, out), Errno.ISDIR);
  t.is(h.call('fd_pwrite', h.root, iov, n, 0n, out), Errno.ISDIR);
  t.is(h.call('fd_pread', 0, iov, n, 0n, out), Errno.SPIPE);
  t.is(h.call('fd_pwrite', socketFd(h), iov, n, 0n, out), Errno.SPIPE);
  t.is(h.call('fd_pread', 42, iov, n, 0n, out), Errno.BADF);
  t.is(h.call('fd_pread', fd, iov, n, 0n, BAD_PTR), Errno.FAULT);
  t.is(h.call('fd_pread', fd, BAD_PTR, 1, 0n, out), Errno.FAULT, 'iovec array out of bounds');
  const badIov = h.alloc(8);
  new DataView(h.memory.buffer).setUint32(badIov, BAD_PTR, true);
  new DataView(h.memory.buffer).setUint32(badIov + 4, 100, true);
  t.is(h.call('fd_pread', fd, badIov, 1, 0n, out), Errno.FAULT, 'buffer out of bounds');
  t.is(h.call('fd_pwrite', fd, ...h.iovs([utf8('x')]), 8n, out), Errno.NOSPC);
  const [, wo] = h.open('f', { rights: Rights.FD_WRITE | Rights.FD_SEEK });
  t.is(h.call('fd_pread', wo, iov, n, 0n, out), Errno.NOTCAPABLE);
  const [, ro] = h.open('f', { rights: Rights.FD_READ | Rights.FD_SEEK });
  t.is(h.call('fd_pwrite', ro, iov, n, 0n, out), Errno.NOTCAPABLE);
});

test('fd_seek moves the offset for SET, CUR and END; EINVAL for bad whence and negative results', (t) => {
  const h = makeFsHost();
  const fd = fileWith(h, 'f', '0123456789');
  const out = h.alloc(8);
  t.is(h.call('fd_seek', fd, 4n, Whence.SET, out), Errno.SUCCESS);
  t.is(h.u64(out), 4n);
  t.is(h.call('fd_seek', fd, -1n, Whence.CUR, out), Errno.SUCCESS);
  t.is(h.u64(out), 3n);
  t.is(h.call('fd_seek', fd, -2n, Whence.END, out), Errno.SUCCESS);
  t.is(h.u64(out), 8n);
  t.is(h.call('fd_seek', fd, 1000n, Whence.CUR, out), Errno.SUCCESS, 'seeking past the end is allowed');
  t.is(h.u64(out), 1008n);
  t.is(h.call('fd_seek', fd, -2000n, Whence.CUR, out), Errno.INVAL);
  t.is(h.call('fd_seek', fd, 0n, 3, out), Errno.INVAL);
  t.is(h.fileEntry(fd).offset, 1008n, 'failed seeks leave the offset');
  t.is(h.call('fd_seek', fd, 0n, Whence.SET, BAD_PTR), Errno.FAULT);
  t.is(h.fileEntry(fd).offset, 1008n, 'a bad result pointer leaves the offset');
  // fd_read (via readFile) continues from the offset fd_seek set.
  h.call('fd_seek', fd, 7n, Whence.SET, out);
  const view = new Uint8Array(5);
  t.is(readFile(h.host, h.fileEntry(fd), [view]), 3);
  t.deepEqual(view.subarray(0, 3), utf8('789'));
});

test('fd_seek and fd_tell: ESPIPE on streams, EBADF on directories and closed fds, rights', (t) => {
  const h = makeFsHost();
  const out = h.alloc(8);
  const sock = socketFd(h);
  for (const fd of [0, 1, 2, sock]) {
    t.is(h.call('fd_seek', fd, 0n, Whence.CUR, out), Errno.SPIPE);
    t.is(h.call('fd_tell', fd, out), Errno.SPIPE);
  }
  t.is(h.call('fd_seek', h.root, 0n, Whence.CUR, out), Errno.BADF);
  t.is(h.call('fd_tell', h.root, out), Errno.BADF);
  t.is(h.call('fd_seek', 50, 0n, Whence.CUR, out), Errno.BADF);
  t.is(h.call('fd_tell', 50, out), Errno.BADF);
  fileWith(h, 'f', 'abc');
  const [, tellOnly] = h.open('f', { rights: Rights.FD_TELL });
  t.is(h.call('fd_seek', tellOnly, 0n, Whence.CUR, out), Errno.SUCCESS, 'lseek(fd, 0, SEEK_CUR) needs only FD_TELL');
  t.is(h.call('fd_seek', tellOnly, 1n, Whence.SET, out), Errno.NOTCAPABLE);
  const [, none] = h.open('f', { rights: Rights.FD_READ });
  t.is(h.call('fd_tell', none, out), Errno.NOTCAPABLE);
});

test('fd_tell reports the offset after reads and writes', (t) => {
  const h = makeFsHost();
  const fd = fileWith(h, 'f', '');
  const out = h.alloc(8);
  t.is(h.call('fd_tell', fd, out), Errno.SUCCESS);
  t.is(h.u64(out), 0n);
  t.is(writeFile(h.host, h.fileEntry(fd), [new Uint8Array(100)]), 100);
  h.call('fd_tell', fd, out);
  t.is(h.u64(out), 100n);
  t.is(h.call('fd_tell', fd, BAD_PTR), Errno.FAULT);
});

test('fd_prestat_get and fd_prestat_dir_name describe pre-opens only', (t) => {
  const h = makeFsHost();
  const p = h.alloc(8);
  t.is(h.call('fd_prestat_get', h.root, p), Errno.SUCCESS);
  t.is(new Uint8Array(h.memory.buffer)[p], 0, 'tag DIR');
  t.is(h.u32(p + 4), '/sandbox'.length);
  const name = h.alloc(16);
  t.is(h.call('fd_prestat_dir_name', h.root, name, 8), Errno.SUCCESS);
  t.deepEqual(h.read(name, 8), utf8('/sandbox'));
  t.is(h.call('fd_prestat_dir_name', h.root, name, 7), Errno.NAMETOOLONG);
  // wasi-libc scans from fd 3 until EBADF: everything that is not a pre-open must say EBADF.
  t.is(h.call('fd_prestat_get', 0, p), Errno.BADF);
  t.is(h.call('fd_prestat_get', h.root + 1, p), Errno.BADF);
  h.call('path_create_directory', h.root, ...h.str('sub'));
  const [subErr, sub] = h.open('sub', { oflags: Oflags.DIRECTORY, rights: Rights.FD_READDIR });
  t.is(subErr, Errno.SUCCESS);
  t.is(h.call('fd_prestat_get', sub, p), Errno.BADF, 'an opened directory is not a pre-open');
  t.is(h.call('fd_prestat_dir_name', sub, name, 16), Errno.NOTDIR);
  t.is(h.call('fd_prestat_dir_name', 99, name, 16), Errno.BADF);
  t.is(h.call('fd_prestat_get', h.root, BAD_PTR), Errno.FAULT);
  t.is(h.call('fd_prestat_dir_name', h.root, BAD_PTR, 8), Errno.FAULT);
});

test('writeFile honours APPEND, advances the offset and stops short then fails with ENOSPC on a full budget', (t) => {
  const h = makeFsHost({ maxBytes: 10 });
  const fd = fileWith(h, 'f', 'abc', { fdflags: Fdflags.APPEND });
  const e = h.fileEntry(fd);
  t.is(writeFile(h.host, e, [utf8('de')]), 2);
  t.is(e.offset, 5n);
  e.offset = 0n;
  t.is(writeFile(h.host, e, [utf8('fg'), utf8('hijkl')]), 5, 'short write: 5 of 7 bytes fit');
  t.is(e.offset, 10n);
  const err = t.throws(() => writeFile(h.host, e, [utf8('x')]));
  t.is((err as { errno?: number }).errno, Errno.NOSPC);
  const view = new Uint8Array(10);
  e.offset = 0n;
  readFile(h.host, e, [view]);
  t.deepEqual(view, utf8('abcdefghij'));
});

test('writeFilestat lays out the 64-byte filestat', (t) => {
  const h = makeFsHost({ tree: tree({ f: 'hello' }, 77n) });
  const [, fd] = h.open('f');
  const ino = h.fileEntry(fd).ino;
  const p = h.alloc(64);
  new Uint8Array(h.memory.buffer).fill(0xff, p, p + 64);
  writeFilestat(h.host, p, ino);
  t.is(h.u64(p), h.vfs.dev);
  t.is(h.u64(p + 8), BigInt(ino));
  t.is(new Uint8Array(h.memory.buffer)[p + 16], Filetype.REGULAR_FILE);
  t.deepEqual([...h.read(p + 17, 7)], [0, 0, 0, 0, 0, 0, 0], 'padding is zeroed');
  t.is(h.u64(p + 24), 1n);
  t.is(h.u64(p + 32), 5n);
  t.deepEqual([h.u64(p + 40), h.u64(p + 48), h.u64(p + 56)], [77n, 77n, 77n]);
  t.throws(() => writeFilestat(h.host, BAD_PTR, ino));
});

test('an unlinked file stays readable through open fds until the last one closes', (t) => {
  const h = makeFsHost();
  const fd1 = fileWith(h, 'f', 'kept alive');
  const [, fd2] = h.open('f');
  const ino = h.fileEntry(fd1).ino;
  t.is(h.call('path_unlink_file', h.root, ...h.str('f')), Errno.SUCCESS);
  t.is(h.open('f')[0], Errno.NOENT);
  const view = new Uint8Array(10);
  t.is(readFile(h.host, h.fileEntry(fd2), [view]), 10);
  t.deepEqual(view, utf8('kept alive'));
  t.is(writeFile(h.host, h.fileEntry(fd1), [utf8('!')]), 1, 'still writable too');
  const st = h.alloc(64);
  writeFilestat(h.host, st, ino);
  t.is(h.u64(st + 24), 0n, 'nlink 0');
  close(h, fd1);
  t.true(h.vfs.has(ino));
  close(h, fd2);
  t.false(h.vfs.has(ino));
  t.is(h.vfs.usedBytes, 0);
});
