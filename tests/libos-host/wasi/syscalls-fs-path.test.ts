import test from 'ava';
import { Errno } from '../../../libos-host/wasi/errno.js';
import { readFile, writeFile } from '../../../libos-host/wasi/syscalls-fs.js';
import {
  Fdflags, Filetype, Fstflags, Lookupflags, Oflags, RIGHTS_DIR_BASE, RIGHTS_FILE_BASE, Rights,
} from '../../../libos-host/wasi/wasi-constants.js';
import type { FsTestHost } from './helpers/fs-host.js';
import { makeFsHost, T0_NS, tree, utf8 } from './helpers/fs-host.js';

const BAD_PTR = 4 * 65536 - 2;
const FOLLOW = Lookupflags.SYMLINK_FOLLOW;
/** The rights wasi-libc asks for when it opens a file O_RDWR: nearly everything. */
const LIBC_RDWR_RIGHTS = BigInt.asUintN(64, -1n);

function p(h: FsTestHost, path: string): [number, number] {
  return h.str(path);
}

function mkdir(h: FsTestHost, path: string, fd = h.root): number {
  return h.call('path_create_directory', fd, ...p(h, path));
}

function touch(h: FsTestHost, path: string, content = ''): void {
  const [errno, fd] = h.open(path, { oflags: Oflags.CREAT });
  if (errno !== 0) throw new Error(`create ${path}: errno ${errno}`);
  if (content.length > 0) writeFile(h.host, h.fileEntry(fd), [utf8(content)]);
}

function statOf(h: FsTestHost, path: string, flags = 0): { errno: number; filetype: number; size: bigint; ino: bigint; nlink: bigint; mtim: bigint } {
  const buf = h.alloc(64);
  const errno = h.call('path_filestat_get', h.root, flags, ...p(h, path), buf);
  return { errno, filetype: new Uint8Array(h.memory.buffer)[buf + 16], ino: h.u64(buf + 8), nlink: h.u64(buf + 24), size: h.u64(buf + 32), mtim: h.u64(buf + 48) };
}

function contents(h: FsTestHost, path: string): string {
  const [errno, fd] = h.open(path, { rights: Rights.FD_READ });
  if (errno !== 0) throw new Error(`open ${path}: errno ${errno}`);
  const view = new Uint8Array(1000);
  const n = readFile(h.host, h.fileEntry(fd), [view]);
  return new TextDecoder().decode(view.subarray(0, n));
}

function symlink(h: FsTestHost, target: string, path: string): number {
  return h.call('path_symlink', ...p(h, target), h.root, ...p(h, path));
}

test('path_create_directory creates nested directories; EEXIST, ENOENT, ENOTDIR and capability errors', (t) => {
  const h = makeFsHost();
  t.is(mkdir(h, 'a'), Errno.SUCCESS);
  t.is(mkdir(h, 'a/b/'), Errno.SUCCESS, 'a trailing slash is fine');
  t.is(statOf(h, 'a/b').filetype, Filetype.DIRECTORY);
  t.is(mkdir(h, 'a'), Errno.EXIST);
  t.is(mkdir(h, '.'), Errno.EXIST);
  t.is(mkdir(h, 'x/y'), Errno.NOENT);
  touch(h, 'f');
  t.is(mkdir(h, 'f'), Errno.EXIST);
  t.is(mkdir(h, 'f/g'), Errno.NOTDIR);
  t.is(mkdir(h, '/abs'), Errno.PERM);
  t.is(mkdir(h, '../up'), Errno.PERM);
  t.is(mkdir(h, 'n'.repeat(256)), Errno.NAMETOOLONG);
  t.is(mkdir(h, 'z', 1), Errno.NOTDIR, 'stdout is not a directory');
  t.is(mkdir(h, 'z', 40), Errno.BADF);
  t.is(h.call('path_create_directory', h.root, BAD_PTR, 10), Errno.FAULT);
  const [, fd] = h.open('a', { rights: RIGHTS_DIR_BASE & ~Rights.PATH_CREATE_DIRECTORY });
  t.is(mkdir(h, 'c', fd), Errno.NOTCAPABLE);
});

test('path_filestat_get stats files, directories and symlinks (followed on request)', (t) => {
  const h = makeFsHost({ tree: tree({ f: 'hello', d: {}, l: { link: 'f' }, dangling: { link: 'nope' } }, 99n) });
  const f = statOf(h, 'f');
  t.deepEqual([f.errno, f.filetype, f.size, f.nlink, f.mtim], [0, Filetype.REGULAR_FILE, 5n, 1n, 99n]);
  t.is(statOf(h, 'd').filetype, Filetype.DIRECTORY);
  const l = statOf(h, 'l');
  t.deepEqual([l.filetype, l.size], [Filetype.SYMBOLIC_LINK, 1n]);
  t.is(statOf(h, 'l', FOLLOW).ino, f.ino);
  t.is(statOf(h, 'dangling', FOLLOW).errno, Errno.NOENT);
  t.is(statOf(h, 'missing').errno, Errno.NOENT);
  t.is(statOf(h, 'f/').errno, Errno.NOTDIR);
  t.is(statOf(h, 'f', 2).errno, Errno.INVAL, 'unknown lookup flags');
  t.is(h.call('path_filestat_get', h.root, 0, ...p(h, 'f'), BAD_PTR), Errno.FAULT);
  t.is(h.call('path_filestat_get', 0, 0, ...p(h, 'f'), h.alloc(64)), Errno.NOTDIR);
});

test('path_filestat_set_times changes the link or its target and validates flags', (t) => {
  const h = makeFsHost({ tree: tree({ f: 'x', l: { link: 'f' } }, 10n) });
  t.is(h.call('path_filestat_set_times', h.root, 0, ...p(h, 'l'), 0n, 500n, Fstflags.MTIM), Errno.SUCCESS);
  t.is(statOf(h, 'l').mtim, 500n);
  t.is(statOf(h, 'f').mtim, 10n, 'the target is untouched without SYMLINK_FOLLOW');
  t.is(h.call('path_filestat_set_times', h.root, FOLLOW, ...p(h, 'l'), 0n, 600n, Fstflags.MTIM), Errno.SUCCESS);
  t.is(statOf(h, 'f').mtim, 600n);
  h.clock.ns = T0_NS + 1n;
  t.is(h.call('path_filestat_set_times', h.root, 0, ...p(h, 'f'), 0n, 0n, Fstflags.MTIM_NOW), Errno.SUCCESS);
  t.is(statOf(h, 'f').mtim, T0_NS + 1n);
  t.is(h.call('path_filestat_set_times', h.root, 0, ...p(h, 'f'), 0n, 1n, Fstflags.MTIM | Fstflags.MTIM_NOW), Errno.INVAL);
  t.is(h.call('path_filestat_set_times', h.root, 0, ...p(h, 'f'), 0n, 0n, Fstflags.ATIM | Fstflags.ATIM_NOW), Errno.INVAL);
  t.is(h.call('path_filestat_set_times', h.root, 0, ...p(h, 'nope'), 0n, 0n, Fstflags.ATIM_NOW), Errno.NOENT);
});

test('path_link makes a hard link; EEXIST, EPERM for directories, ENOENT, EINVAL with FOLLOW', (t) => {
  const h = makeFsHost();
  touch(h, 'file', 'shared');
  mkdir(h, 'sub');
  const link = (from: string, to: string, flags = 0) => h.call('path_link', h.root, flags, ...p(h, from), h.root, ...p(h, to));
  t.is(link('file', 'sub/link'), Errno.SUCCESS);
  t.is(statOf(h, 'file').nlink, 2n);
  t.is(statOf(h, 'sub/link').ino, statOf(h, 'file').ino);
  t.is(contents(h, 'sub/link'), 'shared');
  t.is(link('file', 'file'), Errno.EXIST);
  t.is(link('file', 'sub'), Errno.EXIST);
  t.is(link('sub', 'dirlink'), Errno.PERM);
  t.is(link('missing', 'x'), Errno.NOENT);
  t.is(link('file', 'newlink/'), Errno.NOENT, 'a trailing slash on the new name');
  t.is(link('file', 'x', FOLLOW), Errno.INVAL, 'wasmtime refuses SYMLINK_FOLLOW');
  symlink(h, 'nowhere', 'dangling');
  t.is(link('dangling', 'hard'), Errno.SUCCESS, 'links the symlink itself');
  t.is(statOf(h, 'hard').filetype, Filetype.SYMBOLIC_LINK);
  const [, ro] = h.open('sub', { rights: RIGHTS_DIR_BASE & ~Rights.PATH_LINK_TARGET });
  t.is(h.call('path_link', h.root, 0, ...p(h, 'file'), ro, ...p(h, 'x')), Errno.NOTCAPABLE);
});

test('path_open creates, truncates, refuses EXCL on existing names and opens directories', (t) => {
  const h = makeFsHost();
  const [e1, fd] = h.open('new.txt', { oflags: Oflags.CREAT | Oflags.EXCL, rights: LIBC_RDWR_RIGHTS });
  t.is(e1, Errno.SUCCESS);
  t.true(fd > 3);
  const entry = h.fileEntry(fd);
  t.is(entry.rightsBase, RIGHTS_FILE_BASE, 'requested rights are masked to what a file can have');
  t.is(entry.offset, 0n);
  writeFile(h.host, entry, [utf8('content')]);
  t.is(h.open('new.txt', { oflags: Oflags.CREAT | Oflags.EXCL })[0], Errno.EXIST);
  const [e2] = h.open('new.txt', { oflags: Oflags.TRUNC });
  t.is(e2, Errno.SUCCESS);
  t.is(statOf(h, 'new.txt').size, 0n);
  mkdir(h, 'd');
  const [e3, dfd] = h.open('d', { oflags: Oflags.DIRECTORY, rights: RIGHTS_DIR_BASE | Rights.FD_READ });
  t.is(e3, Errno.SUCCESS);
  t.is(h.entry(dfd).kind, 'dir');
  t.is(h.entry(dfd).rightsBase, RIGHTS_DIR_BASE);
  const [e4, dot] = h.open('.', { rights: 0n });
  t.is(e4, Errno.SUCCESS, 'opening "." with no rights works');
  t.is(h.entry(dot).kind, 'dir');
  const [e5, nested] = h.open('d/', { rights: RIGHTS_DIR_BASE, inheriting: LIBC_RDWR_RIGHTS });
  t.is(e5, Errno.SUCCESS);
  t.is(h.open('inner', { dirFd: nested, oflags: Oflags.CREAT })[0], Errno.SUCCESS, 'paths resolve from an opened directory');
  t.is(statOf(h, 'd/inner').filetype, Filetype.REGULAR_FILE);
});

test('path_open errors: ENOENT, ENOTDIR, EISDIR, EINVAL, ELOOP, ENOTCAPABLE, EBADF, EFAULT, ENOSPC', (t) => {
  const h = makeFsHost({ maxInodes: 8 });
  touch(h, 'f');
  mkdir(h, 'd');
  t.is(h.open('missing')[0], Errno.NOENT);
  t.is(h.open('missing/x', { oflags: Oflags.CREAT })[0], Errno.NOENT);
  t.is(h.open('f', { oflags: Oflags.DIRECTORY, rights: 0n })[0], Errno.NOTDIR);
  t.is(h.open('f/', { rights: 0n })[0], Errno.NOTDIR);
  t.is(h.open('f///', { rights: 0n })[0], Errno.NOTDIR);
  t.is(h.open('d', { rights: Rights.FD_READ | Rights.FD_WRITE })[0], Errno.ISDIR);
  t.is(h.open('d', { oflags: Oflags.TRUNC, rights: 0n })[0], Errno.ISDIR);
  t.is(h.open('newdir/', { oflags: Oflags.CREAT })[0], Errno.ISDIR);
  t.is(h.open('x', { oflags: Oflags.CREAT | Oflags.DIRECTORY })[0], Errno.INVAL);
  t.is(h.open('x', { oflags: 16 })[0], Errno.INVAL);
  t.is(h.open('x', { fdflags: 32 })[0], Errno.INVAL);
  t.is(h.open('x', { dirflags: 2 })[0], Errno.INVAL);
  t.is(h.open('f\0')[0], Errno.INVAL);
  t.is(h.open('/f')[0], Errno.PERM);
  t.is(h.open('d/../../f')[0], Errno.PERM);
  t.is(h.open('f', { dirFd: 2 })[0], Errno.NOTDIR);
  t.is(h.open('f', { dirFd: 77 })[0], Errno.BADF);
  const [, fileFd] = h.open('f');
  t.is(h.open('x', { dirFd: fileFd })[0], Errno.NOTDIR);
  const [, limited] = h.open('d', { rights: RIGHTS_DIR_BASE & ~Rights.PATH_CREATE_FILE });
  t.is(h.open('x', { dirFd: limited, oflags: Oflags.CREAT })[0], Errno.NOTCAPABLE);
  const [, noOpen] = h.open('d', { rights: RIGHTS_DIR_BASE & ~Rights.PATH_OPEN });
  t.is(h.open('x', { dirFd: noOpen })[0], Errno.NOTCAPABLE);
  const [pp, pl] = p(h, 'f');
  t.is(h.call('path_open', h.root, 0, pp, pl, 0, 0n, 0n, 0, BAD_PTR), Errno.FAULT);
  t.is(h.call('path_open', h.root, 0, BAD_PTR, 5, 0, 0n, 0n, 0, h.alloc(4)), Errno.FAULT);
  for (let i = 0; i < 5; i++) h.open(`fill${i}`, { oflags: Oflags.CREAT });
  t.is(h.open('one-too-many', { oflags: Oflags.CREAT })[0], Errno.NOSPC);
});

test('path_open and symlinks: followed with SYMLINK_FOLLOW, ELOOP/ENOTDIR without, ELOOP on cycles', (t) => {
  const h = makeFsHost({ tree: tree({ target: 'data', dir: {} }) });
  symlink(h, 'target', 'l');
  symlink(h, 'dir', 'ldir');
  symlink(h, 'self', 'self');
  symlink(h, 'newfile', 'dangling');
  const [e1, fd] = h.open('l', { dirflags: FOLLOW, rights: Rights.FD_READ });
  t.is(e1, Errno.SUCCESS);
  t.is(h.fileEntry(fd).ino, Number(statOf(h, 'target').ino));
  t.is(h.open('l', { rights: 0n })[0], Errno.LOOP, 'O_NOFOLLOW on a symlink');
  t.is(h.open('ldir', { oflags: Oflags.DIRECTORY, rights: 0n })[0], Errno.NOTDIR);
  t.is(h.open('ldir', { oflags: Oflags.DIRECTORY, dirflags: FOLLOW, rights: 0n })[0], Errno.SUCCESS);
  t.is(h.open('self', { dirflags: FOLLOW })[0], Errno.LOOP);
  t.is(h.open('self')[0], Errno.LOOP);
  t.is(h.open('dangling', { oflags: Oflags.CREAT | Oflags.EXCL, dirflags: FOLLOW })[0], Errno.EXIST, 'EXCL never follows');
  t.is(h.open('dangling', { oflags: Oflags.CREAT, dirflags: FOLLOW })[0], Errno.SUCCESS, 'creates the target');
  t.is(statOf(h, 'newfile').filetype, Filetype.REGULAR_FILE);
});

test('path_open keeps fdflags (APPEND) and masks inheriting rights by the directory', (t) => {
  const h = makeFsHost();
  touch(h, 'log', 'a');
  const [, fd] = h.open('log', { fdflags: Fdflags.APPEND, inheriting: LIBC_RDWR_RIGHTS });
  const e = h.fileEntry(fd);
  t.is(e.fdflags, Fdflags.APPEND);
  t.is(e.rightsInheriting, h.entry(h.root).rightsInheriting);
  writeFile(h.host, e, [utf8('b')]);
  t.is(contents(h, 'log'), 'ab');
});

test('path_readlink reads targets, truncating silently; EINVAL for non-links', (t) => {
  const h = makeFsHost({ tree: tree({ target: '' }) });
  t.is(symlink(h, 'target', 'l'), Errno.SUCCESS);
  const buf = h.alloc(16);
  const used = h.alloc(4);
  new Uint8Array(h.memory.buffer).fill(0xee, buf, buf + 16);
  t.is(h.call('path_readlink', h.root, ...p(h, 'l'), buf, 10, used), Errno.SUCCESS);
  t.is(h.u32(used), 6);
  t.deepEqual(h.read(buf, 6), utf8('target'));
  t.is(new Uint8Array(h.memory.buffer)[buf + 6], 0xee, 'no NUL, rest untouched');
  t.is(h.call('path_readlink', h.root, ...p(h, 'l'), buf, 4, used), Errno.SUCCESS);
  t.is(h.u32(used), 4);
  t.deepEqual(h.read(buf, 4), utf8('targ'));
  t.is(h.call('path_readlink', h.root, ...p(h, 'target'), buf, 10, used), Errno.INVAL);
  t.is(h.call('path_readlink', h.root, ...p(h, 'missing'), buf, 10, used), Errno.NOENT);
  t.is(h.call('path_readlink', h.root, ...p(h, 'l'), BAD_PTR, 10, used), Errno.FAULT);
  t.is(h.call('path_readlink', 1, ...p(h, 'l'), buf, 10, used), Errno.NOTDIR);
});

test('path_remove_directory removes empty directories only', (t) => {
  const h = makeFsHost();
  mkdir(h, 'd');
  mkdir(h, 'd/e');
  touch(h, 'f');
  symlink(h, 'd', 'ld');
  const rm = (path: string) => h.call('path_remove_directory', h.root, ...p(h, path));
  t.is(rm('d'), Errno.NOTEMPTY);
  t.is(rm('f'), Errno.NOTDIR);
  t.is(rm('f/'), Errno.NOTDIR);
  t.is(rm('ld'), Errno.NOTDIR, 'a symlink to a directory is not removed through');
  t.is(rm('missing'), Errno.NOENT);
  t.is(rm('.'), Errno.INVAL);
  t.is(rm('d/..'), Errno.NOTEMPTY);
  t.is(rm('d/e/'), Errno.SUCCESS);
  t.is(rm('d'), Errno.SUCCESS);
  t.is(statOf(h, 'd').errno, Errno.NOENT);
  t.is(rm('..'), Errno.PERM);
});

test('path_rename over existing files and directories follows POSIX', (t) => {
  const h = makeFsHost();
  const mv = (a: string, b: string) => h.call('path_rename', h.root, ...p(h, a), h.root, ...p(h, b));
  touch(h, 'src', 'new');
  touch(h, 'dst', 'old');
  t.is(mv('src', 'dst'), Errno.SUCCESS, 'a file replaces a file');
  t.is(contents(h, 'dst'), 'new');
  t.is(statOf(h, 'src').errno, Errno.NOENT);
  mkdir(h, 'dir');
  t.is(mv('dst', 'dir'), Errno.ISDIR, 'a file over a directory');
  t.is(mv('dir', 'dst'), Errno.NOTDIR, 'a directory over a file');
  mkdir(h, 'empty');
  t.is(mv('dir', 'empty'), Errno.SUCCESS, 'a directory replaces an empty directory');
  t.is(statOf(h, 'dir').errno, Errno.NOENT);
  mkdir(h, 'full');
  touch(h, 'full/x');
  t.is(mv('empty', 'full'), Errno.NOTEMPTY);
  t.is(mv('full', 'full/sub'), Errno.INVAL, 'into itself');
  t.is(mv('full/', 'moved/'), Errno.SUCCESS, 'trailing slashes are fine for directories');
  t.is(contents(h, 'moved/x'), '');
  t.is(mv('dst/', 'x'), Errno.NOTDIR);
  t.is(mv('dst', 'x/'), Errno.NOTDIR);
  t.is(mv('missing', 'x'), Errno.NOENT);
  t.is(mv('.', 'x'), Errno.INVAL);
  t.is(mv('dst', '../x'), Errno.PERM);
  t.is(mv('dst', 'nodir/x'), Errno.NOENT);
  h.call('path_link', h.root, 0, ...p(h, 'dst'), h.root, ...p(h, 'hard'));
  t.is(mv('dst', 'hard'), Errno.SUCCESS, 'renaming onto another link of the same file does nothing');
  t.is(statOf(h, 'dst').errno, Errno.SUCCESS);
});

test('path_rename between directory fds needs source and target rights', (t) => {
  const h = makeFsHost();
  mkdir(h, 'a');
  mkdir(h, 'b');
  touch(h, 'a/f', 'moved');
  const [, a] = h.open('a', { rights: RIGHTS_DIR_BASE });
  const [, b] = h.open('b', { rights: RIGHTS_DIR_BASE & ~Rights.PATH_RENAME_TARGET });
  t.is(h.call('path_rename', a, ...p(h, 'f'), b, ...p(h, 'g')), Errno.NOTCAPABLE);
  t.is(h.call('path_rename', a, ...p(h, 'f'), h.root, ...p(h, 'b/g')), Errno.SUCCESS);
  t.is(contents(h, 'b/g'), 'moved');
  t.is(h.call('path_rename', 0, ...p(h, 'f'), a, ...p(h, 'g')), Errno.NOTDIR);
});

test('path_symlink creates links; EEXIST, ENOENT for a trailing slash, ENOTDIR, EPERM for absolute targets', (t) => {
  const h = makeFsHost();
  t.is(symlink(h, 'source', 'target/'), Errno.NOENT);
  t.is(symlink(h, 'source', 'target'), Errno.SUCCESS, 'dangling links are allowed');
  t.is(statOf(h, 'target').filetype, Filetype.SYMBOLIC_LINK);
  t.is(symlink(h, 'source', 'target'), Errno.EXIST);
  mkdir(h, 'dir');
  t.is(symlink(h, 'source', 'dir'), Errno.EXIST);
  t.is(symlink(h, 'source', 'dir/'), Errno.EXIST);
  touch(h, 'file');
  t.is(symlink(h, 'source', 'file/'), Errno.NOTDIR);
  t.is(symlink(h, 'source', 'file'), Errno.EXIST);
  t.is(symlink(h, '/etc/passwd', 'abs'), Errno.PERM);
  t.is(symlink(h, '', 'empty'), Errno.NOENT);
  t.is(symlink(h, 'x', '../out'), Errno.PERM);
  t.is(symlink(h, 'x', 'nodir/l'), Errno.NOENT);
  t.is(h.call('path_symlink', ...p(h, 'x'), 1, ...p(h, 'l')), Errno.NOTDIR);
});

test('path_unlink_file removes files and links, not directories', (t) => {
  const h = makeFsHost();
  touch(h, 'f');
  mkdir(h, 'd');
  symlink(h, 'd', 'ld');
  const rm = (path: string) => h.call('path_unlink_file', h.root, ...p(h, path));
  t.is(rm('d'), Errno.ISDIR);
  t.is(rm('d/'), Errno.ISDIR);
  t.is(rm('f/'), Errno.NOTDIR);
  t.is(rm('.'), Errno.ISDIR);
  t.is(rm('ld'), Errno.SUCCESS, 'removes the link, not its target');
  t.is(statOf(h, 'd').filetype, Filetype.DIRECTORY);
  t.is(rm('f'), Errno.SUCCESS);
  t.is(rm('f'), Errno.NOENT);
  const [, ro] = h.open('d', { rights: RIGHTS_DIR_BASE & ~Rights.PATH_UNLINK_FILE });
  t.is(h.call('path_unlink_file', ro, ...p(h, 'x')), Errno.NOTCAPABLE);
});

test('path calls refuse invalid UTF-8 with EILSEQ', (t) => {
  const h = makeFsHost();
  const bad = h.bytes(Uint8Array.of(0x66, 0xff, 0x66));
  t.is(h.call('path_create_directory', h.root, bad, 3), Errno.ILSEQ);
});
