// Child process for tests/checkpoint/store-damaged-btree.test.ts: `make DIR` writes a 3-epoch
// synthetic store; `load DIR` restores it and prints one line: "same", "DIFFERENT" (a wrong
// image: the defect), "null", or "refused CODE message". LMDB may crash on some damage (SIGSEGV).
import { CheckpointStore } from '../../../checkpoint/store/checkpoint-store.js';
import { SyntheticVfs, commitChain, expectedMemory } from './synthetic.js';

const [mode, dir] = process.argv.slice(2);
if (mode === 'make') {
  const s = CheckpointStore.open(dir);
  commitChain(s, 1, 3, new SyntheticVfs());
  s.close();
  console.log('made');
} else {
  try {
    const image = CheckpointStore.open(dir).loadImage();
    console.log(image === null ? 'null' : Buffer.compare(image.lvm.memory, expectedMemory(3)) === 0 ? 'same' : 'DIFFERENT');
  } catch (err) {
    console.log(`refused ${(err as { code?: string }).code} ${(err as Error).message}`);
  }
}
