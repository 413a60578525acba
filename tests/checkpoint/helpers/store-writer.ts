/**
 * Child process for the crash test: writes synthetic epochs into the store at argv[2] as fast
 * as it can, forever, printing "committed N" after each commit returns (so the parent knows
 * what must have survived). Continues the chain already in the store.
 */
import { CheckpointStore } from '../../../checkpoint/store/checkpoint-store.js';
import { SyntheticVfs, syntheticCheckpoint } from './synthetic.js';

const store = CheckpointStore.open(process.argv[2], { vfsCompactMinBytes: 2048 });
const vfs = new SyntheticVfs();
const latest = store.latestEpoch();
for (let e = 1; e <= latest; e++) vfs.step(e); // rebuild the VFS the store holds
for (let e = latest + 1; ; e++) {
  store.commit(syntheticCheckpoint(e, vfs.step(e)));
  process.stdout.write(`committed ${e}\n`);
}
