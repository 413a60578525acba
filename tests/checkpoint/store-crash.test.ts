import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { CheckpointStore } from '../../checkpoint/store/checkpoint-store.js';
import { seededRandom, testSeed } from './helpers/checkpointing.js';
import { killHard, spawnTs, watch } from './helpers/child.js';
import { SyntheticVfs, expectedMemory, vfsOf } from './helpers/synthetic.js';

const KILLS = 4;

interface Round {
  /** Arguments for helpers/store-writer.ts after the directory. */
  args: string[];
  /** What the child prints when the moment to kill it has come (after its first commit of the round). */
  killAfter: RegExp;
  /** Longest wait after that line before the kill (ms). */
  maxDelayMs: number;
}

/**
 * Kill a store writer with SIGKILL once per round, then check that the store restores one whole
 * epoch: every commit the child saw return, at most the one in flight more, with exactly that
 * epoch's memory and VFS.
 */
async function killRounds(t: ExecutionContext, seedName: string, rounds: Round[]): Promise<void> {
  const seed = testSeed(seedName);
  const random = seededRandom(seed);
  const dir = mkdtempSync(join(tmpdir(), 'wb-store-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let lastSeen = 0;
  for (const [r, round] of rounds.entries()) {
    const child = spawnTs('tests/checkpoint/helpers/store-writer.ts', [dir, ...round.args]);
    const w = watch(child);
    t.teardown(() => killHard(child));
    await w.until(new RegExp(`committed ${lastSeen + 1}\\b`));
    await w.until(round.killAfter);
    await new Promise((res) => setTimeout(res, 20 + Math.floor(random() * (round.maxDelayMs - 20))));
    await killHard(child);
    const committed = [...w.stdout().matchAll(/committed (\d+)/g)].map((m) => Number(m[1]));
    const lastCommitted = committed.at(-1) ?? 0;
    const phase = w.stdout().trim().split('\n').at(-1) ?? '';
    const store = CheckpointStore.open(dir);
    try {
      const latest = store.latestEpoch();
      // Every commit that returned is durable; at most the one in flight may also have landed.
      t.true(latest === lastCommitted || latest === lastCommitted + 1, `seed ${seed} round ${r + 1}: store at ${latest}, child reported ${lastCommitted}`);
      const image = store.loadImage()!; // verifies every checksum
      t.is(image.epoch, latest);
      t.is(Buffer.compare(image.lvm.memory, expectedMemory(latest)), 0, `seed ${seed} round ${r + 1}: memory of epoch ${latest}`);
      const want = new SyntheticVfs();
      for (let e = 1; e <= latest; e++) want.step(e);
      t.is(Buffer.compare(vfsOf(image.libos.vfs), want.vfs.save()), 0, `seed ${seed} round ${r + 1}: VFS of epoch ${latest}`);
      t.is(store.epochSummaries().at(-1)?.epoch, latest);
      const staged = store.stats().stagedPages;
      t.log(`round ${r + 1}: killed after "${phase}", ${committed.length} commits this round; store at epoch ${latest}` +
        (staged > 0 ? `, ${staged} pages left staged in "${store.stagingToken()}"` : ''));
      lastSeen = latest;
    } finally {
      store.close();
    }
  }
}

test('the store survives kill -9 of its writer mid-transaction: the latest epoch is complete and consistent', async (t) => {
  await killRounds(t, 'store kill -9', Array.from({ length: KILLS }, () => ({ args: [], killAfter: /committed/, maxDelayMs: 320 })));
});

test('the store survives kill -9 while staging a full image and while completing it: it restores one whole chain', async (t) => {
  // "stage" holds each staging transaction open 40 ms, "complete" the completing one 400 ms, so
  // each kill lands inside a transaction of that phase (the round's log line names the phase).
  const stage: Round = { args: ['staged', 'stage'], killAfter: /staging \d+/, maxDelayMs: 300 };
  const complete: Round = { args: ['staged', 'complete'], killAfter: /completing \d+/, maxDelayMs: 300 };
  const free: Round = { args: ['staged'], killAfter: /committed/, maxDelayMs: 320 };
  await killRounds(t, 'store kill -9 staging', [stage, complete, stage, complete, free, free]);
});
