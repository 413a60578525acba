import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { CheckpointStore } from '../../checkpoint/store/checkpoint-store.js';
import { Vfs } from '../../libos-host/wasi/vfs.js';
import { decodeVfsDelta } from '../../libos-host/wasi/vfs-delta.js';
import { seededRandom, testSeed } from './helpers/checkpointing.js';
import { killHard, spawnTs, watch } from './helpers/child.js';
import { SyntheticVfs, expectedMemory } from './helpers/synthetic.js';

const KILLS = 4;

test('the store survives kill -9 of its writer mid-transaction: the latest epoch is complete and consistent', async (t) => {
  const seed = testSeed('store kill -9');
  const random = seededRandom(seed);
  const dir = mkdtempSync(join(tmpdir(), 'wb-store-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let lastSeen = 0;
  for (let round = 1; round <= KILLS; round++) {
    const child = spawnTs('tests/checkpoint/helpers/store-writer.ts', [dir]);
    const w = watch(child);
    t.teardown(() => killHard(child));
    await w.until(new RegExp(`committed ${lastSeen + 1}\\b`));
    await new Promise((r) => setTimeout(r, 20 + Math.floor(random() * 300)));
    await killHard(child);
    const committed = [...w.stdout().matchAll(/committed (\d+)/g)].map((m) => Number(m[1]));
    const lastCommitted = committed.at(-1) ?? 0;
    const store = CheckpointStore.open(dir);
    try {
      const latest = store.latestEpoch();
      // Every commit that returned is durable; at most the one in flight may also have landed.
      t.true(latest === lastCommitted || latest === lastCommitted + 1, `seed ${seed} round ${round}: store at ${latest}, child reported ${lastCommitted}`);
      const image = store.loadImage()!; // verifies every checksum
      t.is(image.epoch, latest);
      t.is(Buffer.compare(image.lvm.memory, expectedMemory(latest)), 0, `seed ${seed} round ${round}: memory of epoch ${latest}`);
      const want = new SyntheticVfs();
      for (let e = 1; e <= latest; e++) want.step(e);
      const got = new Vfs({ now: () => 1n, maxBytes: 1 << 20 });
      got.load(image.libos.vfs[0]);
      for (const d of image.libos.vfs.slice(1)) got.applyDelta(decodeVfsDelta(d));
      t.is(Buffer.compare(got.save(), want.vfs.save()), 0, `seed ${seed} round ${round}: VFS of epoch ${latest}`);
      t.is(store.epochSummaries().at(-1)?.epoch, latest);
      t.log(`round ${round}: killed after ${committed.length} commits this round; store at epoch ${latest}`);
      lastSeen = latest;
    } finally {
      store.close();
    }
  }
});
