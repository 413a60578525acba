import test from 'ava';
import { mulberry32 as rng } from '../../../libos-host/extensions/prng.js';
import { WasiErrno } from '../../../libos-host/wasi/errno.js';
import { Vfs } from '../../../libos-host/wasi/vfs.js';
import type { VfsDelta } from '../../../libos-host/wasi/vfs-delta.js';
import { decodeVfsDelta, encodeVfsDelta } from '../../../libos-host/wasi/vfs-delta.js';
import { VFS_BLOCK_BYTES } from '../../../libos-host/wasi/vfs-inode.js';
import { tree, utf8 } from './helpers/fs-host.js';

/** A checkpoint goes over the wire as bytes: round-trip every delta through the encoding. */
function ship(d: VfsDelta): VfsDelta {
  return decodeVfsDelta(encodeVfsDelta(d));
}

interface Live { vfs: Vfs; clock: { ns: bigint }; open: number[] }

/** Apply one random operation; errnos are expected (they must leave the state untouched). */
function randomOp(l: Live, r: () => number): void {
  const { vfs } = l;
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const dirs: number[] = [];
  const names: Array<[number, string]> = [];
  const files: number[] = [];
  const walk = (d: number): void => {
    dirs.push(d);
    for (const e of vfs.readdir(d, 2n)) {
      names.push([d, e.name]);
      const k = vfs.kindOf(e.ino);
      if (k === 'dir') walk(e.ino);
      else if (k === 'file') files.push(e.ino);
    }
  };
  for (const root of vfs.roots) walk(root);
  for (const ino of l.open) if (vfs.kindOf(ino) === 'file') files.push(ino);
  const name = (): string => pick(['a', 'b', 'c', 'dir', 'file', 'x.txt', 'ж']);
  l.clock.ns += BigInt(1 + Math.floor(r() * 1000));
  try {
    switch (Math.floor(r() * 14)) {
      case 0: vfs.createFile(pick(dirs), name()); break;
      case 1: vfs.mkdir(pick(dirs), name()); break;
      case 2: vfs.symlink(pick(dirs), name(), pick(['a', '../b', 'dir/file', 'nowhere'])); break;
      case 3:
      case 4: {
        if (files.length === 0) break;
        const f = pick(files);
        const len = 1 + Math.floor(r() * (r() < 0.3 ? 3 * VFS_BLOCK_BYTES : 64));
        const data = new Uint8Array(len).map(() => Math.floor(r() * 256));
        vfs.write(f, Math.floor(r() * (vfs.sizeOf(f) + 2 * VFS_BLOCK_BYTES)), data);
        break;
      }
      case 5: if (files.length > 0) vfs.truncate(pick(files), Math.floor(r() * 3 * VFS_BLOCK_BYTES)); break;
      case 6: if (names.length > 0) { const [d, n] = pick(names); vfs.unlink(d, n); } break;
      case 7: if (names.length > 0) { const [d, n] = pick(names); vfs.rmdir(d, n); } break;
      case 8: if (names.length > 0) { const [d, n] = pick(names); vfs.rename(d, n, pick(dirs), name()); } break;
      case 9: if (files.length > 0) vfs.link(pick(dirs), name(), pick(files)); break;
      case 10: if (names.length > 0) { const [d, n] = pick(names); vfs.setTimes(vfs.resolve(d, n, false).ino as number, { kind: 'set', ns: BigInt(Math.floor(r() * 1e9)) }, { kind: 'now' }); } break;
      case 11: if (files.length > 0) { const f = pick(files); vfs.retain(f); l.open.push(f); } break;
      case 12: if (l.open.length > 0) { const i = Math.floor(r() * l.open.length); vfs.release(l.open[i]); l.open.splice(i, 1); } break;
      case 13: if (files.length > 0) vfs.allocate(pick(files), Math.floor(r() * 2 * VFS_BLOCK_BYTES), 1 + Math.floor(r() * VFS_BLOCK_BYTES)); break;
    }
  } catch (err) {
    if (!(err instanceof WasiErrno)) throw err;
  }
}

/**
 * Run `ops` random operations, checkpointing at random points: full save at checkpoint 0, then
 * deltas applied in order to a restored copy, which must equal the live VFS at each checkpoint.
 * Returns a description of the first mismatch, or null.
 */
function runSeed(seed: number, ops: number, tamper?: (d: VfsDelta) => void): string | null {
  const r = rng(seed);
  const clock = { ns: 1_000n };
  const vfs = Vfs.fromHostTree(tree({ a: 'alpha', dir: { file: 'in dir' } }), { now: () => clock.ns, maxBytes: 64 * 1024 });
  vfs.addPreopen(null);
  const live: Live = { vfs, clock, open: [] };
  for (let i = 0; i < 5; i++) randomOp(live, r);
  const restored = new Vfs({ now: () => 0n });
  restored.load(vfs.save());
  vfs.markClean();
  let checkpoint = 0;
  let untilCheckpoint = 1 + Math.floor(r() * 20);
  for (let i = 0; i < ops; i++) {
    randomOp(live, r);
    if (--untilCheckpoint > 0 && i !== ops - 1) continue;
    untilCheckpoint = 1 + Math.floor(r() * 20);
    checkpoint++;
    const delta = vfs.takeDelta();
    tamper?.(delta);
    restored.applyDelta(ship(delta));
    try {
      vfs.checkInvariants();
      restored.checkInvariants();
    } catch (err) {
      return `seed ${seed}, checkpoint ${checkpoint} (op ${i}): invariant broken: ${(err as Error).message}`;
    }
    const a = vfs.save();
    const b = restored.save();
    if (a.length !== b.length || a.some((x, j) => x !== b[j])) {
      return `seed ${seed}, checkpoint ${checkpoint} (op ${i}): restored VFS differs from the live one`;
    }
  }
  return null;
}

test('full save at checkpoint 0 plus deltas 1..N equals the live VFS (seeded random operations)', (t) => {
  const fixed = process.env.VFS_DELTA_SEED;
  const seeds = fixed !== undefined ? [Number(fixed)] : Array.from({ length: 40 }, (_, i) => 0x5eed + i * 7919);
  for (const seed of seeds) {
    const failure = runSeed(seed, 400);
    if (failure !== null) {
      t.fail(`${failure} — replay with VFS_DELTA_SEED=${seed}`);
      return;
    }
  }
  t.pass();
});

test('the delta property check catches a delta that lost a chunk of file data', (t) => {
  // A checker is trusted only once it has caught a broken build: drop every chunk of some delta.
  let dropped = false;
  const failures = [1, 2, 3, 4, 5].map((seed) => runSeed(seed, 200, (d) => {
    if (d.chunks.length > 0 && !dropped) { d.chunks = []; dropped = true; }
  }));
  t.true(dropped);
  t.true(failures.some((f) => f !== null && f.includes('differs')));
});

test('a file truncated and regrown within one epoch reads zeros in the restored copy', (t) => {
  const clock = { ns: 1n };
  const vfs = new Vfs({ now: () => clock.ns });
  const root = vfs.addPreopen(null);
  const f = vfs.createFile(root, 'f');
  vfs.write(f, 0, new Uint8Array(3 * VFS_BLOCK_BYTES).fill(0xaa));
  const restored = new Vfs({ now: () => 0n });
  restored.load(vfs.save());
  vfs.markClean();
  vfs.truncate(f, 10);
  vfs.truncate(f, 3 * VFS_BLOCK_BYTES);
  restored.applyDelta(ship(vfs.takeDelta()));
  const buf = new Uint8Array(3 * VFS_BLOCK_BYTES);
  restored.read(f, 0, buf);
  t.true(buf.subarray(10).every((b) => b === 0));
  t.true(buf.subarray(0, 10).every((b) => b === 0xaa));
});

test('a delta carries only the changed blocks, coalesced, and nothing for reads', (t) => {
  const clock = { ns: 1n };
  const vfs = new Vfs({ now: () => clock.ns });
  const root = vfs.addPreopen(null);
  const f = vfs.createFile(root, 'big');
  vfs.write(f, 0, new Uint8Array(100 * VFS_BLOCK_BYTES));
  vfs.markClean();
  vfs.read(f, 0, new Uint8Array(VFS_BLOCK_BYTES));
  const idle = vfs.takeDelta();
  t.deepEqual([idle.inodes.length, idle.entries.length, idle.chunks.length, idle.removed.length], [0, 0, 0, 0]);
  vfs.write(f, 10 * VFS_BLOCK_BYTES + 100, new Uint8Array(VFS_BLOCK_BYTES)); // touches blocks 10 and 11
  vfs.write(f, 50 * VFS_BLOCK_BYTES, utf8('x'));
  const d = vfs.takeDelta();
  t.deepEqual(d.chunks.map((c) => [c.offset, c.data.length]), [[10 * VFS_BLOCK_BYTES, 2 * VFS_BLOCK_BYTES], [50 * VFS_BLOCK_BYTES, VFS_BLOCK_BYTES]]);
  t.deepEqual(d.inodes.map((i) => i.ino), [f]);
});

test('an inode created and removed within one epoch leaves no trace in the delta', (t) => {
  const vfs = new Vfs({ now: () => 1n });
  const root = vfs.addPreopen(null);
  vfs.markClean();
  const f = vfs.createFile(root, 'tmp');
  vfs.write(f, 0, utf8('scratch'));
  vfs.unlink(root, 'tmp');
  const d = vfs.takeDelta();
  t.deepEqual(d.removed, []);
  t.false(d.inodes.some((i) => i.ino === f));
  t.deepEqual(d.chunks, []);
});

test('applyDelta refuses a delta that does not fit the state (WB_CHECKPOINT_CORRUPT)', (t) => {
  const vfs = new Vfs({ now: () => 1n });
  const root = vfs.addPreopen(null);
  vfs.createFile(root, 'f');
  const d = vfs.takeDelta();
  const empty = new Vfs({ now: () => 1n });
  d.entries.push({ dir: 9999, name: 'x', ino: 1, cookie: 5 });
  const err = t.throws(() => empty.applyDelta(d));
  t.is((err as { code?: string }).code, 'WB_CHECKPOINT_CORRUPT');
});
