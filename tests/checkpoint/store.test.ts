import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { open } from 'lmdb';
import { decodeCheckpoint, encodeCheckpoint, encodeCheckpointBody, wrapEnvelope } from '../../checkpoint/format/checkpoint-codec.js';
import { CheckpointStore, MAX_EPOCH_SUMMARIES, VFS_MAX_DELTAS } from '../../checkpoint/store/checkpoint-store.js';
import { isWaterbearError } from '../../libos-host/errors.js';
import { SyntheticVfs, commitChain, expectedMemory, syntheticCheckpoint, vfsOf } from './helpers/synthetic.js';
import { smallTmpfs } from '../helpers/small-disk.js';
import type { CheckpointData } from '../../checkpoint/checkpoint-data.js';

function tempDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the store rebuilds the latest epoch of a chain: memory, globals, pending block, fds and VFS', (t) => {
  const store = CheckpointStore.open(tempDir(t), { vfsCompactMinBytes: 1024 });
  t.teardown(() => store.close());
  t.is(store.latestEpoch(), 0);
  t.is(store.loadImage(), null);
  const vfs = new SyntheticVfs();
  for (let e = 1; e <= 40; e++) {
    store.commit(syntheticCheckpoint(e, vfs.step(e)));
    const image = store.loadImage()!;
    const want = syntheticCheckpoint(e, { full: false, bytes: new Uint8Array(0) });
    t.is(image.epoch, e);
    t.is(Buffer.compare(image.lvm.memory, expectedMemory(e)), 0, `memory at epoch ${e}`);
    t.deepEqual(image.lvm.globals, want.globals);
    t.deepEqual(image.lvm.pending, want.pending);
    t.deepEqual(image.libos.clock, want.libos.clock);
    t.deepEqual(image.extensions, want.extensions);
    t.deepEqual(image.libos.fds.map((f) => f.fd), [0, 3, 4, 5, 6]);
    t.is(Buffer.compare(vfsOf(image.libos.vfs), vfs.vfs.save()), 0, `VFS at epoch ${e}`);
  }
  t.true(store.stats().vfsBytes < 4 * vfs.vfs.save().length + 2048, 'VFS deltas were compacted');
});

test('the store keeps only the latest version of every page: it does not grow with the number of epochs', (t) => {
  const dir = tempDir(t);
  const store = CheckpointStore.open(dir, { vfsCompactMinBytes: 4096 });
  t.teardown(() => store.close());
  const vfs = new SyntheticVfs();
  commitChain(store, 1, 50, vfs);
  const after50 = store.stats();
  const file50 = statSync(join(dir, 'data.mdb')).size;
  commitChain(store, 51, 400, vfs);
  const after400 = store.stats();
  t.is(after400.pages, after50.pages);
  t.true(after400.bytes < after50.bytes + 16 * 1024, `${after400.bytes} vs ${after50.bytes}`);
  t.true(statSync(join(dir, 'data.mdb')).size <= Math.max(file50 * 2, 4 * 1024 * 1024), 'the LMDB file stays bounded');
  t.is(store.epochSummaries().length, MAX_EPOCH_SUMMARIES);
  t.is(store.epochSummaries().at(-1)!.epoch, 400);
  t.is(Buffer.compare(store.loadImage()!.lvm.memory, expectedMemory(400)), 0);
});

test('a new full checkpoint replaces the whole chain', (t) => {
  const store = CheckpointStore.open(tempDir(t));
  t.teardown(() => store.close());
  commitChain(store, 1, 5, new SyntheticVfs());
  const fresh = new SyntheticVfs();
  const full = { ...syntheticCheckpoint(6, fresh.step(1)), full: true };
  full.pages = full.pages.slice(0, 2);
  store.commit(full);
  t.deepEqual(store.pageIndices(), full.pages.map((p) => p.index));
  const image = store.loadImage()!;
  t.is(image.epoch, 6);
  t.is(image.libos.vfs.length, 1);
});

/** A store holding a 3-epoch chain, with what it restores and the VFS that made it. */
function chainOfThree(t: import('ava').ExecutionContext): { store: CheckpointStore; vfs: SyntheticVfs; before: NonNullable<ReturnType<CheckpointStore['loadImage']>> } {
  const store = CheckpointStore.open(tempDir(t));
  t.teardown(() => store.close());
  const vfs = new SyntheticVfs();
  commitChain(store, 1, 3, vfs);
  return { store, vfs, before: store.loadImage()! };
}

test('refused checkpoints (torn, corrupt, wrong version, out of order) change nothing: the previous epoch still restores', (t) => {
  const { store, vfs, before } = chainOfThree(t);
  const next = syntheticCheckpoint(4, vfs.step(4));
  const good = encodeCheckpoint(next);
  const corrupt = Uint8Array.from(good);
  corrupt[good.length - 100] ^= 0x40;
  const cases: Array<[string, Uint8Array, string]> = [
    ['torn', good.subarray(0, Math.floor(good.length / 2)), 'WB_CHECKPOINT_TRUNCATED'],
    ['corrupt', corrupt, 'WB_CHECKPOINT_CORRUPT'],
    ['wrong version', wrapEnvelope(encodeCheckpointBody(next), 0, 2), 'WB_CHECKPOINT_VERSION'],
    ['out of order', encodeCheckpoint(syntheticCheckpoint(6, { full: false, bytes: next.libos.vfs.bytes })), 'WB_CHECKPOINT_CORRUPT'],
  ];
  for (const [what, bytes, code] of cases) {
    const err = t.throws(() => store.commit(decodeCheckpoint(bytes)), undefined, what);
    t.is((err as { code?: string }).code, code, what);
    t.is(store.latestEpoch(), 3, what);
    const image = store.loadImage()!;
    t.is(Buffer.compare(image.lvm.memory, before.lvm.memory), 0, what);
    t.deepEqual(image.libos.vfs.map((b) => b.length), before.libos.vfs.map((b) => b.length), what);
  }
  // And the good one still applies afterwards.
  store.commit(decodeCheckpoint(good));
  t.is(store.latestEpoch(), 4);
  t.is(Buffer.compare(store.loadImage()!.lvm.memory, expectedMemory(4)), 0);
});

test('a checkpoint handed to the store with a page of the wrong size is refused whole: nothing of it is applied', (t) => {
  const { store, vfs, before } = chainOfThree(t);
  const next = syntheticCheckpoint(4, vfs.step(4));
  t.true(next.pages.length > 1);
  const last = next.pages[next.pages.length - 1];
  const short = { ...next, pages: [...next.pages.slice(0, -1), { index: last.index, data: last.data.subarray(0, 100) }] };
  const err = t.throws(() => store.commit(short));
  t.is((err as { code?: string }).code, 'WB_CHECKPOINT_CORRUPT');
  t.regex(err!.message, new RegExp(`page ${last.index} has 100 bytes`));
  t.is(store.latestEpoch(), 3);
  t.is(Buffer.compare(store.loadImage()!.lvm.memory, before.lvm.memory), 0);
});

test('a corrupt page in the store is refused on load with WB_CHECKPOINT_CORRUPT, naming the page', (t) => {
  const store = CheckpointStore.open(tempDir(t));
  t.teardown(() => store.close());
  commitChain(store, 1, 3, new SyntheticVfs());
  t.truthy(store.loadImage());
  store.unsafeCorruptPage(17, 100);
  const err = t.throws(() => store.loadImage());
  t.true(isWaterbearError(err, 'WB_CHECKPOINT_CORRUPT'));
  t.regex(err!.message, /page 17/);
});

test('a store over its byte limit refuses the epoch with WB_STORE_FULL and keeps the previous one', (t) => {
  // 64 pages take ~520 KiB on disk (two LMDB pages each); 128 do not fit.
  const store = CheckpointStore.open(tempDir(t), { maxBytes: 700 * 1024 });
  t.teardown(() => store.close());
  const vfs = new SyntheticVfs();
  commitChain(store, 1, 2, vfs);
  const big = syntheticCheckpoint(3, vfs.step(3));
  big.memoryBytes *= 2; // grown memory: 64 more pages, over the limit
  const extra = Array.from({ length: 64 }, (_, i) => ({ index: 64 + i, data: new Uint8Array(4096).fill(i + 1) }));
  big.pages = [...big.pages, ...extra];
  const err = t.throws(() => store.commit(big));
  t.is((err as { code?: string }).code, 'WB_STORE_FULL');
  t.regex(err!.message, /store still holds epoch 2/);
  t.is(store.latestEpoch(), 2);
  t.is(Buffer.compare(store.loadImage()!.lvm.memory, expectedMemory(2)), 0);
});

test('the byte limit bounds the data file: pages are counted as LMDB lays them out, not by their length', (t) => {
  const dir = tempDir(t);
  const limit = 2 * 1024 * 1024;
  const store = CheckpointStore.open(dir, { maxBytes: limit });
  t.teardown(() => store.close());
  const vfs = new SyntheticVfs();
  let refusedAt = 0;
  for (let e = 1; e < 1000; e++) {
    // 16 new pages an epoch (memory grows by 64 KiB).
    const cp = syntheticCheckpoint(e, vfs.step(e));
    cp.memoryBytes += e * 65536;
    cp.pages = [...cp.pages, ...Array.from({ length: 16 }, (_, i) => ({ index: 64 + (e - 1) * 16 + i, data: new Uint8Array(4096).fill(e & 0xff) }))];
    try {
      store.commit(cp);
    } catch (err) {
      t.true(isWaterbearError(err, 'WB_STORE_FULL'), String(err));
      refusedAt = cp.epoch;
      break;
    }
  }
  t.true(refusedAt > 2, `refused at epoch ${refusedAt}`);
  const stats = store.stats();
  t.true(stats.bytes <= limit, `${stats.bytes} counted`);
  t.is(stats.fileBytes, statSync(join(dir, 'data.mdb')).size);
  // Beyond the counted bytes the file holds LMDB's own pages (meta, branches, free pages kept for reuse).
  t.true(stats.fileBytes <= limit + 512 * 1024, `data file ${stats.fileBytes} bytes under a ${limit}-byte limit`);
  t.true(stats.pages * 4096 * 1.9 < stats.bytes, `${stats.pages} pages counted as ${stats.bytes} bytes`);
});

/** Checkpoints of a synthetic chain that grow memory by 16 written pages per epoch, so a small disk fills up. */
function* growingChain(): Generator<CheckpointData> {
  const vfs = new SyntheticVfs();
  for (let e = 1; e < 10_000; e++) {
    const cp = syntheticCheckpoint(e, vfs.step(e));
    cp.memoryBytes = 4 * 65536 + Math.ceil(e / 4) * 65536;
    cp.pages = [...cp.pages, ...Array.from({ length: 16 }, (_, i) => ({ index: 64 + (e - 1) * 16 + i, data: new Uint8Array(4096).fill(e & 0xff) }))]
      .filter((p) => (p.index + 1) * 4096 <= cp.memoryBytes);
    yield cp;
  }
}

test('a full disk refuses the epoch with WB_STORE_FULL and keeps the previous one', (t) => {
  const mnt = smallTmpfs(t, '1m');
  if (mnt === null) { t.pass('skipped: see the log'); return; }
  const store = CheckpointStore.open(join(mnt, 'store'));
  let e = 0;
  let err: unknown = null;
  try {
    for (const cp of growingChain()) { e = cp.epoch; store.commit(cp); }
  } catch (caught) {
    err = caught;
  }
  t.true(isWaterbearError(err, 'WB_STORE_FULL'), `got ${String(err)}`);
  t.is(store.latestEpoch(), e - 1);
  const image = store.loadImage()!;
  t.is(image.epoch, e - 1);
  store.close();
});

test('a full disk under the asynchronous commit a backup uses is one WB_STORE_FULL: no stray rejection from lmdb, and the store goes on', async (t) => {
  const mnt = smallTmpfs(t, '1m');
  if (mnt === null) { t.pass('skipped: see the log'); return; }
  // lmdb-js rejects promises of its own that nobody holds when a commit fails (kriszyp/lmdb-js#368);
  // under Node's default that kills the process, as it killed a backup whose disk filled up.
  const stray: unknown[] = [];
  const onStray = (reason: unknown): void => { stray.push(reason); };
  process.on('unhandledRejection', onStray);
  t.teardown(() => { process.off('unhandledRejection', onStray); });
  const store = CheckpointStore.open(join(mnt, 'store'));
  t.teardown(() => store.close());
  let e = 0;
  let err: unknown = null;
  try {
    for (const cp of growingChain()) { e = cp.epoch; await store.commitBatchAsync([cp]); }
  } catch (caught) {
    err = caught;
  }
  t.true(isWaterbearError(err, 'WB_STORE_FULL'), `got ${String(err)}`);
  t.is(store.latestEpoch(), e - 1);
  // A rejection is reported unhandled after the microtask queue drains: give it a few turns.
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(stray.map(String), []);
  t.is(store.loadImage()!.epoch, e - 1);
});

test('a store written with another layout version is refused with WB_CHECKPOINT_VERSION', (t) => {
  const dir = tempDir(t);
  CheckpointStore.open(dir).close();
  const env = open({ path: dir, maxDbs: 8 });
  const meta = env.openDB('meta', { encoding: 'binary' });
  meta.putSync('format', Buffer.from(JSON.stringify({ version: 99 })));
  const err = t.throws(() => CheckpointStore.open(dir));
  t.is((err as { code?: string }).code, 'WB_CHECKPOINT_VERSION');
  t.true(existsSync(dir));
  // A version written as text is shown as text, not as "version 1, this waterbear reads version 1".
  meta.putSync('format', Buffer.from(JSON.stringify({ version: '1' })));
  t.regex(t.throws(() => CheckpointStore.open(dir))!.message, /has layout version "1", this waterbear reads version 1/);
  env.close();
});

test('a batch of consecutive checkpoints commits in one transaction and restores like the same chain committed one by one', (t) => {
  const one = CheckpointStore.open(tempDir(t), { vfsCompactMinBytes: 1024 });
  const batched = CheckpointStore.open(tempDir(t), { vfsCompactMinBytes: 1024 });
  t.teardown(() => { one.close(); batched.close(); });
  const vfsA = new SyntheticVfs();
  const vfsB = new SyntheticVfs();
  commitChain(one, 1, 30, vfsA);
  // Batches of growing size, crossing VFS compaction inside a batch.
  let e = 1;
  for (const size of [1, 2, 3, 5, 8, 11]) {
    const cps = [];
    for (let i = 0; i < size; i++, e++) cps.push(syntheticCheckpoint(e, vfsB.step(e)));
    batched.commitBatch(cps);
    t.is(batched.latestEpoch(), e - 1);
  }
  const a = one.loadImage()!;
  const b = batched.loadImage()!;
  t.is(b.epoch, 30);
  t.is(Buffer.compare(b.lvm.memory, a.lvm.memory), 0);
  t.is(Buffer.compare(vfsOf(b.libos.vfs), vfsOf(a.libos.vfs)), 0);
  t.deepEqual(batched.epochSummaries().map((s) => s.epoch), one.epochSummaries().map((s) => s.epoch));
});

test('a batch that rewrites pages, with a full checkpoint inside it, stores what committing one by one stores', (t) => {
  const one = CheckpointStore.open(tempDir(t));
  const batched = CheckpointStore.open(tempDir(t));
  t.teardown(() => { one.close(); batched.close(); });
  const [vfsA, vfsB] = [new SyntheticVfs(), new SyntheticVfs()];
  commitChain(one, 1, 3, vfsA);
  commitChain(batched, 1, 3, vfsB);
  // Epochs 4..13: pagesOf repeats every 5 epochs, so later checkpoints rewrite earlier pages, and
  // the full checkpoint at 9 (a few pages only: the rest of its memory is zero) replaces the chain.
  const chain = (vfs: SyntheticVfs) => Array.from({ length: 10 }, (_, i) => {
    const e = 4 + i;
    if (e !== 9) return syntheticCheckpoint(e, vfs.step(e));
    return { ...syntheticCheckpoint(e, vfs.stepFull(e)), full: true };
  });
  for (const cp of chain(vfsA)) one.commit(cp);
  batched.commitBatch(chain(vfsB));
  const [a, b] = [one.loadImage()!, batched.loadImage()!];
  t.is(b.epoch, 13);
  t.is(Buffer.compare(b.lvm.memory, a.lvm.memory), 0);
  t.is(Buffer.compare(vfsOf(b.libos.vfs), vfsOf(a.libos.vfs)), 0);
  t.deepEqual(batched.head(), one.head());
  t.deepEqual(batched.pageIndices(), one.pageIndices());
  const { fileBytes: _a, ...batchedStats } = batched.stats();
  const { fileBytes: _b, ...oneStats } = one.stats();
  t.deepEqual(batchedStats, oneStats, 'what the stores hold (their files differ by free pages)');
  t.deepEqual(batched.epochSummaries().map((s) => [s.epoch, s.full, s.pages]), one.epochSummaries().map((s) => [s.epoch, s.full, s.pages]));
});

test('the VFS sizes and head epoch a commit checks match what is stored, also after refused batches', (t) => {
  // Compaction by count only (a huge size threshold): many small deltas, compacted every VFS_MAX_DELTAS.
  const store = CheckpointStore.open(tempDir(t), { vfsCompactMinBytes: 64 * 1024 * 1024 });
  t.teardown(() => store.close());
  const vfs = new SyntheticVfs();
  const storedBytes = (): { bytes: number; records: number } => {
    const records = store.loadImage()!.libos.vfs; // read and verified record by record
    return { bytes: records.reduce((n, r) => n + r.length, 0), records: records.length };
  };
  store.commit(syntheticCheckpoint(1, vfs.step(1)));
  let compactions = 0;
  for (let e = 2; e <= 2 * VFS_MAX_DELTAS + 20; e++) {
    const good = syntheticCheckpoint(e, vfs.step(e));
    if (e % 7 === 0) {
      // Refused whole after `good` was written inside the transaction: the sizes must not keep it.
      const gap = syntheticCheckpoint(e + 2, { full: false, bytes: good.libos.vfs.bytes });
      t.throws(() => store.commitBatch([good, gap]), { code: 'WB_CHECKPOINT_CORRUPT' });
      t.is(store.stats().vfsBytes, storedBytes().bytes, `after the refused batch at epoch ${e}`);
      t.is(store.latestEpoch(), e - 1, `the head written inside the refused batch at epoch ${e} is not kept`);
    }
    const before = storedBytes().records;
    store.commit(good);
    const after = storedBytes();
    if (after.records < before) compactions++;
    t.is(store.stats().vfsBytes, after.bytes, `epoch ${e}`);
    t.true(after.records <= VFS_MAX_DELTAS + 1, `epoch ${e}: ${after.records} VFS records`);
  }
  t.is(compactions, 2);
});

test('a batch with one checkpoint that does not follow is refused whole: nothing of it is applied', (t) => {
  const store = CheckpointStore.open(tempDir(t));
  t.teardown(() => store.close());
  const vfs = new SyntheticVfs();
  commitChain(store, 1, 3, vfs);
  const before = store.loadImage()!;
  const ok4 = syntheticCheckpoint(4, vfs.step(4));
  const ok5 = syntheticCheckpoint(5, vfs.step(5));
  const gap7 = syntheticCheckpoint(7, vfs.step(7));
  const err = t.throws(() => store.commitBatch([ok4, ok5, gap7]));
  t.true(isWaterbearError(err, 'WB_CHECKPOINT_CORRUPT'), String(err));
  t.regex(err!.message, /checkpoint 7/);
  t.is(store.latestEpoch(), 3);
  t.is(Buffer.compare(store.loadImage()!.lvm.memory, before.lvm.memory), 0);
  // The good prefix still applies on its own.
  store.commitBatch([ok4, ok5]);
  t.is(store.latestEpoch(), 5);
  t.is(Buffer.compare(store.loadImage()!.lvm.memory, expectedMemory(5)), 0);
});

test('an asynchronous batch commit resolves once the batch is stored; a refused batch rejects and applies nothing', async (t) => {
  const dir = tempDir(t);
  const store = CheckpointStore.open(dir);
  t.teardown(() => store.close());
  const vfs = new SyntheticVfs();
  await store.commitBatchAsync([1, 2, 3].map((e) => syntheticCheckpoint(e, vfs.step(e))));
  t.is(store.latestEpoch(), 3);
  // Another process sees it: it is committed, not only visible to this one.
  const reader = CheckpointStore.open(dir, { readOnly: true });
  t.is(reader.latestEpoch(), 3);
  reader.close();
  const ok4 = syntheticCheckpoint(4, vfs.step(4));
  const gap6 = syntheticCheckpoint(6, vfs.step(6));
  const err = await t.throwsAsync(store.commitBatchAsync([ok4, gap6]));
  t.true(isWaterbearError(err, 'WB_CHECKPOINT_CORRUPT'), String(err));
  t.is(store.latestEpoch(), 3);
  t.is(Buffer.compare(store.loadImage()!.lvm.memory, expectedMemory(3)), 0);
  // Two batches in flight at once are stored in order.
  const ok5 = syntheticCheckpoint(5, vfs.step(5));
  await Promise.all([store.commitBatchAsync([ok4]), store.commitBatchAsync([ok5])]);
  t.is(store.latestEpoch(), 5);
  t.is(Buffer.compare(store.loadImage()!.lvm.memory, expectedMemory(5)), 0);
});

test('a restore image writes, into memory it is given, what loadImage returns; it refuses a corrupt page or a store written since', (t) => {
  const store = CheckpointStore.open(tempDir(t));
  t.teardown(() => store.close());
  t.is(store.loadImageForRestore(), null);
  const vfs = new SyntheticVfs();
  commitChain(store, 1, 3, vfs);
  const flat = store.loadImage()!;
  const lazy = store.loadImageForRestore()!;
  t.is(lazy.epoch, 3);
  t.is(lazy.lvm.memory.byteLength, flat.lvm.memory.length);
  t.deepEqual(lazy.lvm.globals, flat.lvm.globals);
  t.deepEqual(lazy.libos, flat.libos);
  const into = new Uint8Array(lazy.lvm.memory.byteLength);
  lazy.lvm.memory.writeInto(into);
  t.is(Buffer.compare(into, expectedMemory(3)), 0, 'the memory of epoch 3');

  // Written meanwhile: the head it was read with is gone, so its pages would not match it.
  commitChain(store, 4, 4, vfs);
  const moved = t.throws(() => lazy.lvm.memory.writeInto(new Uint8Array(lazy.lvm.memory.byteLength)));
  t.true(isWaterbearError(moved, 'WB_STORE_IO'), moved?.message);
  t.regex(moved!.message, /written while its epoch 3 was being restored/);

  const fresh = store.loadImageForRestore()!;
  store.unsafeCorruptPage(17, 100);
  const corrupt = t.throws(() => fresh.lvm.memory.writeInto(new Uint8Array(fresh.lvm.memory.byteLength)));
  t.true(isWaterbearError(corrupt, 'WB_CHECKPOINT_CORRUPT'), corrupt?.message);
  t.regex(corrupt!.message, /page 17/);
});
