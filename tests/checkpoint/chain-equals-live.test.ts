import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Checkpointer } from '../../checkpoint/checkpointer.js';
import { decodeCheckpoint, encodeCheckpoint } from '../../checkpoint/format/checkpoint-codec.js';
import { CheckpointChain } from '../../checkpoint/restore-image.js';
import { CheckpointStore } from '../../checkpoint/store/checkpoint-store.js';
import type { TrackerKind } from '../../checkpoint/trackers/dirty-tracker.js';
import type { Lvm } from '../../libos-host/runtime/lvm.js';
import { firstDifference, launchTracked, seededRandom, testSeed } from './helpers/checkpointing.js';

/**
 * Run compute.wasm, checkpointing at random suspension points (forced at its writes and, with
 * yield points, anywhere in its loops); after each checkpoint, the state rebuilt from the store
 * and from the decoded chain must equal live memory byte for byte.
 */
async function checkChain(t: import('ava').ExecutionContext, tracker: TrackerKind, yieldPoints: boolean): Promise<void> {
  const seed = testSeed(`chain-equals-live ${tracker}`);
  const random = seededRandom(seed);
  const dir = mkdtempSync(join(tmpdir(), 'wb-chain-'));
  const store = CheckpointStore.open(dir);
  const chain = new CheckpointChain();
  let checkpointer: Checkpointer | null = null;
  let checkpoints = 0;
  let suspensions = 0;
  const verify = (lvm: Lvm): void => {
    const cp = (checkpointer as Checkpointer).capture();
    const decoded = decodeCheckpoint(encodeCheckpoint(cp, { compression: random() < 0.5 ? 'deflate' : 'none' }));
    store.commit(decoded);
    chain.apply(decoded);
    checkpoints++;
    const live = new Uint8Array(lvm.memory.buffer);
    const fromStore = store.loadImage();
    t.truthy(fromStore);
    // The unused tail of the Asyncify stack is scratch: only its used part is state.
    const [, [, used]] = lvm.asyncifyRanges();
    const skip: Array<[number, number]> = tracker === 'shadow' ? [] : [[used, lvm.image.layout.asyncifyStackEnd]];
    for (const [what, image] of [['store', fromStore!], ['chain', chain.image()]] as const) {
      const at = firstDifference(image.lvm.memory, live, skip);
      t.is(at, -1, `seed ${seed}: ${what} differs from live memory at byte ${at} after epoch ${cp.epoch} (${tracker})`);
      t.is(image.epoch, cp.epoch);
    }
  };
  const g = await launchTracked('test/compute', {
    tracker, yieldPoints, env: ['ROUNDS=40'],
    hooks: {
      onSuspended: (lvm) => {
        suspensions++;
        // The first two suspensions always checkpoint (a full one and an incremental one): with
        // few suspensions (4 for seed 982881) the random draw alone could test no chain at all.
        if (checkpoints < 2 || random() < 0.6) verify(lvm);
        lvm.requestSuspend(lvm.abi.now('monotonic') + BigInt(Math.floor(random() * 20e6)));
      },
    },
  });
  checkpointer = new Checkpointer(g.lvm, { tracker: g.tracker });
  g.lvm.requestSuspend();
  try {
    const exit = await g.lvm.run();
    t.deepEqual(exit, { kind: 'exit', code: 0 });
    t.regex(g.stdout(), /done \d+/);
    t.true(checkpoints >= 2, `seed ${seed}: only ${checkpoints} checkpoints in ${suspensions} suspensions`);
  } finally {
    checkpointer.close();
    store.close();
    g.os.closeAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('every incremental chain rebuilt from the store equals live memory (shadow tracker)', async (t) => {
  await checkChain(t, 'shadow', false);
});

test('every incremental chain rebuilt from the store equals live memory (instrument tracker, yield points)', async (t) => {
  await checkChain(t, 'instrument', true);
});
