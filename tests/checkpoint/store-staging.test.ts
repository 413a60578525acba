import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { open } from 'lmdb';
import type { CheckpointData, CheckpointPage } from '../../checkpoint/checkpoint-data.js';
import { CheckpointStore, storedPageFootprint, type CheckpointStoreOptions, type StoreFault } from '../../checkpoint/store/checkpoint-store.js';
import { isWaterbearError } from '../../libos-host/errors.js';
import {
  SYNTH_MEMORY_BYTES, SyntheticVfs, commitChain, expectedMemory, imagePages, pageContent, syntheticCheckpoint, vfsOf,
} from './helpers/synthetic.js';

const PAGES = SYNTH_MEMORY_BYTES / 4096;

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-staging-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** A new image, unlike anything in the synthetic chain: pages `indices` filled from `seed`, the rest zero. */
function newImage(seed: number, indices: readonly number[]): Uint8Array {
  const mem = new Uint8Array(SYNTH_MEMORY_BYTES);
  for (const i of indices) mem.set(pageContent(seed, i), i * 4096);
  return mem;
}

/** `mem` with `pages` written over it (a copy). */
function withPages(mem: Uint8Array, pages: readonly CheckpointPage[]): Uint8Array {
  const out = Uint8Array.from(mem);
  for (const p of pages) out.set(p.data, p.index * 4096);
  return out;
}

/** Stage pages `indices` of `image` into the open staging area `token`, `slice` pages per call. */
async function stage(store: CheckpointStore, token: string, image: Uint8Array, indices: readonly number[], slice = 8): Promise<void> {
  for (let i = 0; i < indices.length; i += slice) await store.stagePagesAsync(token, imagePages(image, indices.slice(i, i + slice)));
}

/** The full checkpoint `epoch` that completes staging area `token` with `pages`. */
function completing(epoch: number, vfs: SyntheticVfs, token: string, pages: CheckpointPage[]): CheckpointData {
  return { ...syntheticCheckpoint(epoch, vfs.stepFull(epoch)), full: true, pages, stagedFrom: token };
}

/** A new store in a temp dir holding epochs 1..`epochs` of the synthetic chain (closed at teardown). */
function storeWithChain(t: ExecutionContext, epochs: number, options: CheckpointStoreOptions = {}): { store: CheckpointStore; vfs: SyntheticVfs } {
  const store = CheckpointStore.open(tempDir(t), options);
  t.teardown(() => store.close());
  const vfs = new SyntheticVfs();
  commitChain(store, 1, epochs, vfs);
  return { store, vfs };
}

/** The store still restores epoch `epoch` of the synthetic chain, memory and VFS. */
function assertChain(t: ExecutionContext, store: CheckpointStore, epoch: number, what: string): void {
  const image = store.loadImage()!;
  t.is(image.epoch, epoch, what);
  t.is(Buffer.compare(image.lvm.memory, expectedMemory(epoch)), 0, `${what}: memory of epoch ${epoch}`);
  const want = new SyntheticVfs();
  for (let e = 1; e <= epoch; e++) want.step(e);
  t.is(Buffer.compare(vfsOf(image.libos.vfs), want.vfs.save()), 0, `${what}: VFS of epoch ${epoch}`);
}

function assertMemory(t: ExecutionContext, store: CheckpointStore, epoch: number, memory: Uint8Array, what: string): void {
  const image = store.loadImage()!;
  t.is(image.epoch, epoch, what);
  t.is(Buffer.compare(image.lvm.memory, memory), 0, `${what}: memory`);
}

test('a full image staged in slices and completed by a stagedFrom checkpoint restores exactly that image; incrementals apply on top', async (t) => {
  const { store, vfs } = storeWithChain(t, 3);
  const chainBytes = store.stats().bytes;

  // Staged: pages 0..47 of a new image; 48..63 stay zero unless the final checkpoint sends them.
  const image = newImage(100, range(0, 48));
  await store.beginStagingAsync('view2-epoch4');
  t.is(store.stagingToken(), 'view2-epoch4');
  await stage(store, 'view2-epoch4', image, range(0, 48));
  t.is(store.stats().stagedPages, 48);
  t.is(store.stats().bytes, chainBytes + 48 * storedPageFootprint(4096), 'staged pages are counted');
  assertChain(t, store, 3, 'while staging');

  // The final checkpoint: overrides three staged pages and adds one that was not staged.
  const final = imagePages(newImage(104, [0, 5, 40, 50]), [0, 5, 40, 50]);
  const cp4 = completing(4, vfs, 'view2-epoch4', final);
  const cp5 = syntheticCheckpoint(5, vfs.step(5));
  const cp6 = syntheticCheckpoint(6, vfs.step(6));
  await store.commitBatchAsync([cp4, cp5]); // completed and continued in one transaction
  const at4 = withPages(image, final);
  assertMemory(t, store, 5, withPages(at4, cp5.pages), 'after completing and epoch 5');
  t.is(store.stagingToken(), null);
  const held = [...new Set([...range(0, 48), 50, ...cp5.pages.map((p) => p.index)])].sort((a, b) => a - b);
  t.deepEqual(store.pageIndices(), held);
  t.is(store.stats().pages, held.length);
  t.is(store.stats().stagedPages, 0, 'the old chain was emptied: one image on disk');
  const summary4 = store.epochSummaries().find((s) => s.epoch === 4)!;
  t.like(summary4, { full: true, pages: 4, stagedPages: 45 });
  t.is(store.head()!.stagedFrom, undefined, 'the head does not name the finished staging area');

  store.commit(cp6);
  const at6 = withPages(withPages(at4, cp5.pages), cp6.pages);
  assertMemory(t, store, 6, at6, 'an incremental after it');
  t.is(Buffer.compare(vfsOf(store.loadImage()!.libos.vfs), vfs.vfs.save()), 0, 'VFS: the full image then deltas');

  // Again, so the staging area moves back to the first page database.
  const image2 = newImage(200, range(10, 64));
  await store.beginStagingAsync('view3-epoch7');
  await stage(store, 'view3-epoch7', image2, range(10, 64), 16);
  assertMemory(t, store, 6, at6, 'while staging again');
  const final2 = imagePages(newImage(207, [63]), [63]);
  store.commit(completing(7, vfs, 'view3-epoch7', final2)); // the synchronous commit completes staging too
  assertMemory(t, store, 7, withPages(image2, final2), 'completed a second time');
  t.deepEqual(store.pageIndices(), range(10, 64));
  t.is(store.stats().stagedPages, 0);
  const cp8 = syntheticCheckpoint(8, vfs.step(8));
  await store.commitBatchAsync([cp8]);
  assertMemory(t, store, 8, withPages(withPages(image2, final2), cp8.pages), 'an incremental after the second');
});

test('the old chain stays restorable after a refused or failed completion, and the staging area stays open for a retry', async (t) => {
  let fault: StoreFault | null = null;
  const { store, vfs } = storeWithChain(t, 3, { faultHook: () => fault });
  const image = newImage(100, range(0, PAGES));
  await store.beginStagingAsync('T');
  await stage(store, 'T', image, range(0, PAGES), 16);

  // A failing disk during staging: nothing of that call is staged.
  fault = { errno: 'EIO' };
  const ioErr = await t.throwsAsync(store.stagePagesAsync('T', imagePages(newImage(9, [1]), [1])));
  t.true(isWaterbearError(ioErr, 'WB_STORE_IO'), String(ioErr));
  fault = null;

  // Refused: the epoch does not follow the stored one.
  const stale = completing(3, new SyntheticVfs(), 'T', []);
  t.true(isWaterbearError(t.throws(() => store.commit(stale)), 'WB_CHECKPOINT_CORRUPT'));
  // Failed: a full disk while the completion is written (after all its records, before the commit).
  const final = imagePages(newImage(104, [2]), [2]);
  const cp4 = completing(4, vfs, 'T', final);
  fault = { errno: 'ENOSPC' };
  const fullErr = await t.throwsAsync(store.commitBatchAsync([cp4]));
  t.true(isWaterbearError(fullErr, 'WB_STORE_FULL'), String(fullErr));
  t.throws(() => store.commit(cp4), undefined, 'the synchronous commit fails the same way');
  fault = null;
  assertChain(t, store, 3, 'after the refused and failed completions');
  t.is(store.stagingToken(), 'T', 'the staging area is still open');
  t.is(store.stats().stagedPages, PAGES);

  await store.commitBatchAsync([cp4]);
  assertMemory(t, store, 4, withPages(image, final), 'the retry');
});

test('a token that is not the open staging area is refused and nothing is applied', async (t) => {
  const { store, vfs } = storeWithChain(t, 3);
  const image = newImage(100, range(0, PAGES));
  const none = await t.throwsAsync(store.stagePagesAsync('A', imagePages(image, [0])));
  t.true(isWaterbearError(none, 'WB_CHECKPOINT_CORRUPT'), String(none));
  t.regex(none!.message, /not open.*send a full image/);
  t.true(isWaterbearError(t.throws(() => store.commit(completing(4, new SyntheticVfs(), 'A', []))), 'WB_CHECKPOINT_CORRUPT'), 'completing when none is open');

  await store.beginStagingAsync('A');
  await stage(store, 'A', image, range(0, 8));
  await store.beginStagingAsync('B'); // replaces A
  for (const call of [store.stagePagesAsync('A', imagePages(image, [9])), store.commitBatchAsync([completing(4, new SyntheticVfs(), 'A', [])])]) {
    const err = await t.throwsAsync(call);
    t.true(isWaterbearError(err, 'WB_CHECKPOINT_CORRUPT'), String(err));
    t.regex(err!.message, /"B"/, 'names the open staging area');
  }
  // An incremental checkpoint cannot name a staging area.
  const inc = { ...syntheticCheckpoint(4, vfs.step(4)), stagedFrom: 'B' };
  t.true(isWaterbearError(t.throws(() => store.commit(inc)), 'WB_CHECKPOINT_CORRUPT'));
  for (const bad of ['', 'x'.repeat(300)]) {
    t.true(isWaterbearError(await t.throwsAsync(store.beginStagingAsync(bad)), 'WB_CHECKPOINT_CORRUPT'), `token ${bad.length} chars`);
  }
  t.is(store.stagingToken(), 'B');
  t.is(store.stats().stagedPages, 0);
  assertChain(t, store, 3, 'after the refusals');
});

test('a staged page whose checksum does not match is refused, and no page of that call is staged', async (t) => {
  const { store, vfs } = storeWithChain(t, 2);
  const image = newImage(100, range(0, PAGES));
  await store.beginStagingAsync('T');
  await stage(store, 'T', image, range(0, 4));
  const slices: Array<[string, CheckpointPage[]]> = [];
  const flipped = imagePages(image, range(4, 12));
  flipped[5].data[100] ^= 1;
  slices.push(['a flipped byte', flipped]);
  const wrongSum = imagePages(image, range(4, 12));
  wrongSum[7].crc32c = (wrongSum[7].crc32c as number) ^ 0x10;
  slices.push(['a wrong checksum', wrongSum]);
  const unsealed = imagePages(image, range(4, 12));
  delete unsealed[0].crc32c;
  slices.push(['no checksum', unsealed]);
  slices.push(['a short page', [...imagePages(image, [4]), { index: 5, data: new Uint8Array(100), crc32c: 0 }]]);
  slices.push(['a page outside wasm32', imagePages(image, [4]).map((p) => ({ ...p, index: 2 ** 20 }))]);
  for (const [what, pages] of slices) {
    const err = await t.throwsAsync(store.stagePagesAsync('T', pages), undefined, what);
    t.true(isWaterbearError(err, 'WB_CHECKPOINT_CORRUPT'), `${what}: ${String(err)}`);
    t.is(store.stats().stagedPages, 4, what);
  }
  // Later writes of an index replace earlier ones, the staging area goes on.
  await stage(store, 'T', image, range(0, PAGES));
  const final = imagePages(newImage(103, [7]), [7]);
  await store.commitBatchAsync([completing(3, vfs, 'T', final)]);
  assertMemory(t, store, 3, withPages(image, final), 'completed after the refusals');
});

test('a staged page outside the memory of the completing checkpoint is refused at completion', async (t) => {
  const { store, vfs } = storeWithChain(t, 2);
  await store.beginStagingAsync('T');
  const big = new Uint8Array(SYNTH_MEMORY_BYTES * 2).fill(7);
  await store.stagePagesAsync('T', imagePages(big, [PAGES + 3]));
  const err = t.throws(() => store.commit(completing(3, vfs, 'T', [])));
  t.true(isWaterbearError(err, 'WB_CHECKPOINT_CORRUPT'), String(err));
  t.regex(err!.message, new RegExp(`staged page ${PAGES + 3}`));
  assertChain(t, store, 2, 'after the refusal');
});

test('beginning a staging area discards the pages staged before', async (t) => {
  const { store, vfs } = storeWithChain(t, 2);
  await store.beginStagingAsync('A');
  await stage(store, 'A', newImage(50, range(0, PAGES)), range(0, PAGES));
  t.is(store.stats().stagedPages, PAGES);
  await store.beginStagingAsync('B');
  t.is(store.stats().stagedPages, 0);
  const image = newImage(60, range(0, 10));
  await stage(store, 'B', image, range(0, 10));
  await store.commitBatchAsync([completing(3, vfs, 'B', [])]);
  assertMemory(t, store, 3, image, 'only B\'s pages; the rest is zero');
  t.deepEqual(store.pageIndices(), range(0, 10));
});

test('staged pages count against the store limit: a slice over it is refused with WB_STORE_FULL and nothing of it is staged', async (t) => {
  const dir = tempDir(t);
  const probe = CheckpointStore.open(dir);
  const vfs = new SyntheticVfs();
  commitChain(probe, 1, 2, vfs);
  const chainBytes = probe.stats().bytes;
  probe.close();
  const page = storedPageFootprint(4096);
  // Room for 30 staged pages beside the chain, not 31.
  const store = CheckpointStore.open(dir, { maxBytes: chainBytes + 30 * page + page / 2 });
  t.teardown(() => store.close());
  const image = newImage(100, range(0, PAGES));
  await store.beginStagingAsync('T');
  await stage(store, 'T', image, range(0, 30), 10);
  const err = await t.throwsAsync(store.stagePagesAsync('T', imagePages(image, range(25, 40))));
  t.true(isWaterbearError(err, 'WB_STORE_FULL'), String(err));
  t.regex(err!.message, /store still holds epoch 2/);
  t.is(store.stats().stagedPages, 30, 'nothing of the refused slice');
  await store.stagePagesAsync('T', imagePages(newImage(101, range(0, 30)), range(0, 30))); // replacing staged pages needs no room
  t.is(store.stats().stagedPages, 30);
  // An epoch of the old chain is checked with the staged pages counted too.
  const grown = syntheticCheckpoint(3, vfs.step(3));
  grown.memoryBytes *= 2;
  grown.pages = [...grown.pages, ...imagePages(new Uint8Array(SYNTH_MEMORY_BYTES * 2).fill(3), [PAGES])];
  t.true(isWaterbearError(t.throws(() => store.commit(grown)), 'WB_STORE_FULL'));
  // Completing frees the old chain's pages: 30 + 20 new pages fit once the 64 old ones go.
  const final = imagePages(newImage(103, range(30, 50)), range(30, 50));
  const cp3 = completing(3, vfs, 'T', final);
  await store.commitBatchAsync([cp3]);
  assertMemory(t, store, 3, withPages(newImage(101, range(0, 30)), final), 'completed within the limit');
  // But not over it: a completion whose image outgrows the limit is refused.
  await store.beginStagingAsync('U');
  await stage(store, 'U', image, range(0, 30), 10);
  const over = completing(4, vfs, 'U', imagePages(new Uint8Array(2 * SYNTH_MEMORY_BYTES).fill(4), range(30, 2 * PAGES)));
  over.memoryBytes = 2 * SYNTH_MEMORY_BYTES;
  const overErr = t.throws(() => store.commit(over));
  t.true(isWaterbearError(overErr, 'WB_STORE_FULL'), String(overErr));
  t.is(store.latestEpoch(), 3);
  t.is(store.stagingToken(), 'U');
});

test('a completed staging area survives reopening; an unfinished one does not change what loadImage returns', async (t) => {
  const dir = tempDir(t);
  let store = CheckpointStore.open(dir);
  const vfs = new SyntheticVfs();
  commitChain(store, 1, 3, vfs);
  await store.beginStagingAsync('T');
  const image = newImage(100, range(0, PAGES));
  await stage(store, 'T', image, range(0, 40));
  store.close();

  store = CheckpointStore.open(dir);
  assertChain(t, store, 3, 'reopened while staging');
  t.is(store.stagingToken(), 'T');
  t.is(store.stats().stagedPages, 40);
  const reader = CheckpointStore.open(dir, { readOnly: true });
  assertChain(t, reader, 3, 'read-only while staging');
  reader.close();
  // The staging area goes on after the restart.
  await stage(store, 'T', image, range(40, PAGES));
  await store.commitBatchAsync([completing(4, vfs, 'T', [])]);
  store.close();

  store = CheckpointStore.open(dir);
  t.teardown(() => store.close());
  assertMemory(t, store, 4, image, 'reopened after completing');
  t.is(store.stagingToken(), null);
  const cp5 = syntheticCheckpoint(5, vfs.step(5));
  store.commit(cp5);
  assertMemory(t, store, 5, withPages(image, cp5.pages), 'an incremental after reopening');
});

test('a store written before staging existed (one page database, no pagesDb key) opens, loads and can stage', async (t) => {
  const dir = tempDir(t);
  const vfs = new SyntheticVfs();
  const writer = CheckpointStore.open(dir);
  commitChain(writer, 1, 3, vfs);
  writer.close();
  // Make it exactly the layout of the code before staging: no second page database, no pagesDb key.
  const env = open({ path: dir, maxDbs: 8 });
  const meta = env.openDB<Buffer, string>('meta', { encoding: 'binary' });
  t.deepEqual([...meta.getKeys({})].sort(), ['format', 'head']);
  env.openDB('pages-b', { keyEncoding: 'uint32', encoding: 'binary' }).dropSync();
  env.close();

  const reader = CheckpointStore.open(dir, { readOnly: true });
  assertChain(t, reader, 3, 'read-only');
  t.is(reader.stats().stagedPages, 0);
  t.is(reader.stagingToken(), null);
  reader.close();
  const store = CheckpointStore.open(dir);
  t.teardown(() => store.close());
  assertChain(t, store, 3, 'read-write');
  commitChain(store, 4, 4, vfs);
  const image = newImage(100, range(0, PAGES));
  await store.beginStagingAsync('T');
  await stage(store, 'T', image, range(0, PAGES), 32);
  await store.commitBatchAsync([completing(5, vfs, 'T', [])]);
  assertMemory(t, store, 5, image, 'staged in an old store');
});
