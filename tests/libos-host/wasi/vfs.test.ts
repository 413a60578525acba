import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { Errno, WasiErrno } from '../../../libos-host/wasi/errno.js';
import { Vfs } from '../../../libos-host/wasi/vfs.js';
import { decodeVfsDelta, encodeVfsDelta } from '../../../libos-host/wasi/vfs-delta.js';
import { VFS_BLOCK_BYTES, VFS_MAX_SYMLINK_FOLLOWS } from '../../../libos-host/wasi/vfs-inode.js';
import { Filetype } from '../../../libos-host/wasi/wasi-constants.js';
import { tree, utf8 } from './helpers/fs-host.js';

function newVfs(opts: { maxBytes?: number; maxInodes?: number } = {}): { vfs: Vfs; clock: { ns: bigint }; root: number } {
  const clock = { ns: 5_000n };
  const vfs = new Vfs({ now: () => clock.ns, ...opts });
  const root = vfs.addPreopen(null);
  return { vfs, clock, root };
}

function errnoOf(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof WasiErrno) return err.errno;
    throw err;
  }
  return Errno.SUCCESS;
}

test('fromHostTree copies files, directories and symlinks with host mtimes', (t) => {
  const vfs = Vfs.fromHostTree(tree({ 'a.txt': 'hello', sub: { 'b.txt': 'bee', link: { link: '../a.txt' } } }, 42n), { now: () => 7n });
  const root = vfs.roots[0];
  const a = vfs.resolve(root, 'a.txt', false).ino as number;
  const buf = new Uint8Array(10);
  t.is(vfs.read(a, 0, buf), 5);
  t.deepEqual(buf.subarray(0, 5), utf8('hello'));
  const st = vfs.stat(a);
  t.is(st.mtimeNs, 42n);
  t.is(st.filetype, Filetype.REGULAR_FILE);
  t.is(st.nlink, 1);
  t.is(vfs.stat(root).nlink, 3, 'root: 2 + one subdirectory');
  const viaLink = vfs.resolve(root, 'sub/link', true).ino;
  t.is(viaLink, a);
  t.is(vfs.usedBytes, 8);
  vfs.checkInvariants();
});

test('fromHostTree refuses a tree over the byte budget with WB_CONFIG_INVALID', (t) => {
  const err = t.throws(() => Vfs.fromHostTree(tree({ big: 'x'.repeat(100) }), { now: () => 0n, maxBytes: 50 }));
  t.true(isWaterbearError(err, 'WB_CONFIG_INVALID'));
  const notDir = t.throws(() => new Vfs({ now: () => 0n }).addPreopen({ kind: 'file', data: new Uint8Array(1), mtimeNs: 0n }));
  t.true(isWaterbearError(notDir, 'WB_CONFIG_INVALID'));
});

test('Vfs options are validated at construction', (t) => {
  t.true(isWaterbearError(t.throws(() => new Vfs({ now: () => 0n, maxBytes: -1 })), 'WB_CONFIG_INVALID'));
  t.true(isWaterbearError(t.throws(() => new Vfs({ now: () => 0n, maxInodes: 0 })), 'WB_CONFIG_INVALID'));
});

test('resolution refuses absolute paths and escapes through .. or symlinks', (t) => {
  const { vfs, root } = newVfs();
  const sub = vfs.mkdir(root, 'sub');
  vfs.symlink(sub, 'up', '../..');
  vfs.symlink(sub, 'abs', '/etc/passwd');
  t.is(errnoOf(() => vfs.resolve(root, '/etc', false)), Errno.PERM);
  t.is(errnoOf(() => vfs.resolve(root, '..', false)), Errno.PERM);
  t.is(errnoOf(() => vfs.resolve(root, 'sub/../..', false)), Errno.PERM);
  t.is(errnoOf(() => vfs.resolve(root, 'sub/up/x', false)), Errno.PERM);
  t.is(errnoOf(() => vfs.resolve(root, 'sub/abs', true)), Errno.PERM);
  // From the subdirectory, `..` is an escape too: an fd is a capability for its own subtree.
  t.is(errnoOf(() => vfs.resolve(sub, '..', false)), Errno.PERM);
  t.is(vfs.resolve(root, 'sub/..', false).ino, root);
  t.is(vfs.resolve(root, 'sub/./../sub//', false).ino, sub);
});

test('resolution: trailing slash, missing parents, ENOTDIR, ENAMETOOLONG, NUL and empty paths', (t) => {
  const { vfs, root } = newVfs();
  const f = vfs.createFile(root, 'file');
  const d = vfs.mkdir(root, 'dir');
  t.is(errnoOf(() => vfs.resolve(root, 'file/', false)), Errno.NOTDIR);
  t.is(errnoOf(() => vfs.resolve(root, 'file/x', false)), Errno.NOTDIR);
  t.is(errnoOf(() => vfs.resolve(root, 'nope/x', false)), Errno.NOENT);
  t.is(errnoOf(() => vfs.resolve(root, '', false)), Errno.NOENT);
  t.is(errnoOf(() => vfs.resolve(root, 'a\0b', false)), Errno.INVAL);
  t.is(errnoOf(() => vfs.resolve(root, 'x'.repeat(256), false)), Errno.NAMETOOLONG);
  t.is(errnoOf(() => vfs.resolve(root, 'a/'.repeat(2100), false)), Errno.NAMETOOLONG);
  t.is(vfs.resolve(root, 'x'.repeat(255), false).ino, null, '255 bytes is allowed');
  t.is(vfs.resolve(root, 'dir/', false).ino, d);
  t.is(vfs.resolve(root, 'file', false).ino, f);
  const missing = vfs.resolve(root, 'dir/new', false);
  t.deepEqual([missing.parent, missing.name, missing.ino], [d, 'new', null]);
});

test('symlinks: followed in the middle always, at the end on request; loops give ELOOP', (t) => {
  const { vfs, root } = newVfs();
  const d = vfs.mkdir(root, 'dir');
  const f = vfs.createFile(d, 'f');
  const l = vfs.symlink(root, 'l', 'dir');
  vfs.symlink(root, 'self', 'self');
  vfs.symlink(root, 'a', 'b');
  vfs.symlink(root, 'b', 'a');
  t.is(vfs.resolve(root, 'l/f', false).ino, f);
  t.is(vfs.resolve(root, 'l', false).ino, l);
  t.is(vfs.resolve(root, 'l', true).ino, d);
  t.is(vfs.resolve(root, 'l/', false).ino, d, 'a trailing slash follows the link');
  t.is(errnoOf(() => vfs.resolve(root, 'self', true)), Errno.LOOP);
  t.is(errnoOf(() => vfs.resolve(root, 'a/x', false)), Errno.LOOP);
  // A chain of exactly the limit resolves; one more is ELOOP.
  for (let i = 0; i < VFS_MAX_SYMLINK_FOLLOWS; i++) vfs.symlink(root, `c${i}`, i === 0 ? 'dir' : `c${i - 1}`);
  t.is(vfs.resolve(root, `c${VFS_MAX_SYMLINK_FOLLOWS - 1}`, true).ino, d);
  vfs.symlink(root, 'over', `c${VFS_MAX_SYMLINK_FOLLOWS - 1}`);
  t.is(errnoOf(() => vfs.resolve(root, 'over', true)), Errno.LOOP);
});

test('writes grow files, gaps read as zeros, and the byte budget ends in a short write then ENOSPC', (t) => {
  const { vfs, root } = newVfs({ maxBytes: 10_000 });
  const f = vfs.createFile(root, 'f');
  t.is(vfs.write(f, 5000, new Uint8Array([1, 2, 3])), 3);
  const buf = new Uint8Array(5003);
  t.is(vfs.read(f, 0, buf), 5003);
  t.true(buf.subarray(0, 5000).every((b) => b === 0));
  t.deepEqual([...buf.subarray(5000)], [1, 2, 3]);
  t.is(vfs.usedBytes, 5003);
  // 4997 bytes of budget left: a 6000-byte write is cut short, then nothing fits.
  t.is(vfs.write(f, 5003, new Uint8Array(6000).fill(9)), 4997);
  t.is(vfs.usedBytes, 10_000);
  t.is(errnoOf(() => vfs.write(f, 10_000, new Uint8Array(1))), Errno.NOSPC);
  t.is(vfs.write(f, 0, new Uint8Array(100).fill(7)), 100, 'overwriting costs nothing');
  t.is(errnoOf(() => vfs.truncate(f, 10_001)), Errno.NOSPC);
  vfs.truncate(f, 10);
  t.is(vfs.usedBytes, 10);
  vfs.truncate(f, 20);
  const tail = new Uint8Array(10);
  vfs.read(f, 10, tail);
  t.true(tail.every((b) => b === 0), 'bytes past a truncation read as zeros after regrowth');
  vfs.checkInvariants();
});

test('the inode cap ends in ENOSPC', (t) => {
  const { vfs, root } = newVfs({ maxInodes: 3 });
  vfs.createFile(root, 'a');
  vfs.mkdir(root, 'b');
  t.is(errnoOf(() => vfs.createFile(root, 'c')), Errno.NOSPC);
});

test('timestamps come from the injected clock', (t) => {
  const { vfs, clock, root } = newVfs();
  clock.ns = 100n;
  const f = vfs.createFile(root, 'f');
  t.is(vfs.stat(f).mtimeNs, 100n);
  t.is(vfs.stat(root).mtimeNs, 100n, 'creating a name changes the directory');
  clock.ns = 200n;
  vfs.write(f, 0, utf8('x'));
  t.deepEqual([vfs.stat(f).atimeNs, vfs.stat(f).mtimeNs, vfs.stat(f).ctimeNs], [100n, 200n, 200n]);
  clock.ns = 300n;
  vfs.read(f, 0, new Uint8Array(1));
  t.is(vfs.stat(f).atimeNs, 100n, 'reads do not touch atime (noatime): they must not dirty checkpoints');
  vfs.setTimes(f, { kind: 'set', ns: 7n }, { kind: 'now' });
  t.deepEqual([vfs.stat(f).atimeNs, vfs.stat(f).mtimeNs, vfs.stat(f).ctimeNs], [7n, 300n, 300n]);
});

test('link counts follow POSIX for files and directories', (t) => {
  const { vfs, root } = newVfs();
  const f = vfs.createFile(root, 'f');
  vfs.link(root, 'g', f);
  t.is(vfs.stat(f).nlink, 2);
  const d = vfs.mkdir(root, 'd');
  vfs.mkdir(d, 'e');
  t.is(vfs.stat(d).nlink, 3);
  t.is(vfs.stat(root).nlink, 3);
  t.is(errnoOf(() => vfs.link(root, 'dl', d)), Errno.PERM);
  vfs.unlink(root, 'f');
  t.is(vfs.stat(f).nlink, 1);
  vfs.checkInvariants();
});

test('an unlinked file stays readable while retained and is freed on the last release', (t) => {
  const { vfs, root } = newVfs();
  const f = vfs.createFile(root, 'f');
  vfs.write(f, 0, utf8('still here'));
  vfs.retain(f);
  vfs.unlink(root, 'f');
  t.true(vfs.has(f));
  t.is(vfs.stat(f).nlink, 0);
  const buf = new Uint8Array(10);
  t.is(vfs.read(f, 0, buf), 10);
  t.is(vfs.usedBytes, 10, 'its bytes still count');
  vfs.release(f);
  t.false(vfs.has(f));
  t.is(vfs.usedBytes, 0);
  t.throws(() => vfs.release(f));
});

test('rename moves, replaces and refuses per POSIX', (t) => {
  const { vfs, root } = newVfs();
  const a = vfs.mkdir(root, 'a');
  const b = vfs.mkdir(a, 'b');
  t.is(errnoOf(() => vfs.rename(root, 'a', b, 'x')), Errno.INVAL, 'a directory into its own subtree');
  t.is(errnoOf(() => vfs.rename(root, 'a', a, 'x')), Errno.INVAL);
  vfs.rename(a, 'b', root, 'b');
  t.is(vfs.stat(a).nlink, 2);
  t.is(vfs.stat(root).nlink, 4);
  t.is(vfs.readdir(b, 1n).next().value?.ino, root, '.. follows the move');
  vfs.createFile(root, 'f');
  t.is(errnoOf(() => vfs.rename(root, 'a', root, 'f')), Errno.NOTDIR);
  t.is(errnoOf(() => vfs.rename(root, 'f', root, 'a')), Errno.ISDIR);
  vfs.createFile(b, 'inside');
  t.is(errnoOf(() => vfs.rename(root, 'a', root, 'b')), Errno.NOTEMPTY);
  vfs.unlink(b, 'inside');
  vfs.rename(root, 'a', root, 'b');
  t.false(vfs.has(b), 'the replaced empty directory is freed');
  t.is(errnoOf(() => vfs.rename(root, 'missing', root, 'x')), Errno.NOENT);
  vfs.checkInvariants();
});

test('readdir lists . and .. first, then names in creation order, resuming at cookies', (t) => {
  const { vfs, root } = newVfs();
  const names = ['c', 'a', 'b'];
  for (const n of names) vfs.createFile(root, n);
  const all = [...vfs.readdir(root, 0n)];
  t.deepEqual(all.map((e) => e.name), ['.', '..', ...names]);
  t.is(all[1].ino, root, 'the root is its own parent');
  const rest = [...vfs.readdir(root, all[2].next)];
  t.deepEqual(rest.map((e) => e.name), ['a', 'b']);
  // Removing an entry already read does not shift the ones after the cookie.
  vfs.unlink(root, 'c');
  t.deepEqual([...vfs.readdir(root, all[2].next)].map((e) => e.name), ['a', 'b']);
});

test('save and load reproduce the file system exactly', (t) => {
  const { vfs, root } = newVfs();
  const d = vfs.mkdir(root, 'd');
  const f = vfs.createFile(d, 'f');
  vfs.write(f, 3 * VFS_BLOCK_BYTES + 5, utf8('tail'));
  vfs.symlink(root, 's', 'd/f');
  vfs.retain(f);
  const bytes = vfs.save();
  const copy = new Vfs({ now: () => 0n });
  copy.load(bytes);
  t.deepEqual(copy.save(), bytes);
  t.is(copy.stat(f).size, vfs.stat(f).size);
  t.is(copy.resolve(copy.roots[0], 's', true).ino, f);
  copy.checkInvariants();
});

test('load refuses corrupt, truncated and other-version images and keeps its state', (t) => {
  const { vfs } = newVfs();
  const good = vfs.save();
  const copy = new Vfs({ now: () => 0n });
  copy.addPreopen(null);
  const before = copy.save();
  t.true(isWaterbearError(t.throws(() => copy.load(good.subarray(0, good.length - 1))), 'WB_CHECKPOINT_TRUNCATED'));
  const garbled = good.slice();
  garbled[12] = 0x78; // the JSON's opening brace
  t.true(isWaterbearError(t.throws(() => copy.load(garbled)), 'WB_CHECKPOINT_CORRUPT'));
  const extra = new Uint8Array(good.length + 1);
  extra.set(good);
  t.true(isWaterbearError(t.throws(() => copy.load(extra)), 'WB_CHECKPOINT_CORRUPT'));
  t.true(isWaterbearError(t.throws(() => copy.load(good.subarray(0, 6))), 'WB_CHECKPOINT_TRUNCATED'));
  const other = good.slice();
  other[4] = 99;
  t.true(isWaterbearError(t.throws(() => copy.load(other)), 'WB_CHECKPOINT_VERSION'));
  const bad = good.slice();
  bad[0] = 0;
  t.true(isWaterbearError(t.throws(() => copy.load(bad)), 'WB_CHECKPOINT_CORRUPT'));
  const delta = encodeVfsDelta(vfs.takeDelta());
  t.true(isWaterbearError(t.throws(() => copy.load(delta)), 'WB_CHECKPOINT_CORRUPT'), 'a delta is not a full image');
  t.deepEqual(copy.save(), before);
  t.notThrows(() => decodeVfsDelta(good));
});
