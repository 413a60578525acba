/**
 * Child process for the crash tests: writes synthetic epochs into the store at argv[2] as fast
 * as it can, forever, printing "committed N" after each commit returns (so the parent knows
 * what must have survived). Continues the chain already in the store.
 *
 * With argv[3] = "staged", every STAGED_EVERY-th epoch is a full image sent through a staging
 * area (the whole memory of the previous epoch, STAGE_SLICE_PAGES per call, then a completing
 * checkpoint with that epoch's pages), printing "staging N" and "completing N" as each phase
 * starts. argv[4] = "stage" or "complete" holds every write transaction of that phase open for
 * a while (through the store's fault hook, after its records are written), so that the parent's
 * kill lands inside one.
 */
import { CheckpointStore, type StoreFault } from '../../../checkpoint/store/checkpoint-store.js';
import { SyntheticVfs, expectedMemory, imagePages, syntheticCheckpoint, SYNTH_MEMORY_BYTES } from './synthetic.js';

const STAGED_EVERY = 4;
const STAGE_SLICE_PAGES = 4;
const HOLD_MS: Record<string, number> = { stage: 40, complete: 400 };

const [dir, mode, slowPhase] = process.argv.slice(2);
let phase = '';
const hold = (slowPhase !== undefined && HOLD_MS[slowPhase] !== undefined) ? { phase: slowPhase, fault: { delayMs: HOLD_MS[slowPhase] } } : null;
const store = CheckpointStore.open(dir, {
  vfsCompactMinBytes: 2048,
  faultHook: (): StoreFault | null => (hold !== null && phase === hold.phase ? hold.fault : null),
});
const vfs = new SyntheticVfs();
const latest = store.latestEpoch();
for (let e = 1; e <= latest; e++) vfs.step(e); // rebuild the VFS the store holds
for (let e = latest + 1; ; e++) {
  if (mode === 'staged' && e % STAGED_EVERY === 0) {
    const token = `pid${process.pid}-epoch${e}`;
    phase = 'stage';
    process.stdout.write(`staging ${e}\n`);
    await store.beginStagingAsync(token);
    const previous = expectedMemory(e - 1);
    for (let i = 0; i * 4096 < SYNTH_MEMORY_BYTES; i += STAGE_SLICE_PAGES) {
      await store.stagePagesAsync(token, imagePages(previous, Array.from({ length: STAGE_SLICE_PAGES }, (_, k) => i + k)));
    }
    phase = 'complete';
    process.stdout.write(`completing ${e}\n`);
    await store.commitBatchAsync([{ ...syntheticCheckpoint(e, vfs.stepFull(e)), full: true, stagedFrom: token }]);
    phase = '';
  } else {
    store.commit(syntheticCheckpoint(e, vfs.step(e)));
  }
  process.stdout.write(`committed ${e}\n`);
}
