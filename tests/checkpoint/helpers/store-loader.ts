// Child process for the damaged-store tests: `make DIR` writes a 3-epoch synthetic store;
// `load DIR [rw|ro] [hide-after-open=PAGE]` restores it (read-only with `ro`, as `waterbear
// restore` and `checkpoint inspect` do; else writable, as a replica does) and prints one line:
// "same", "DIFFERENT" (a wrong image: the defect), "null", or "refused CODE message". With
// hide-after-open, LMDB leaf page PAGE is made to hide its entries once the store is open (damage
// the checks before opening cannot see). LMDB may crash on some damage (SIGSEGV/SIGBUS): the
// store must refuse it first.
import { join } from 'node:path';
import { CheckpointStore } from '../../../checkpoint/store/checkpoint-store.js';
import { hideLeafKeys, lmdbLayout } from './damaged-store.js';
import { SyntheticVfs, commitChain, expectedMemory, vfsOf } from './synthetic.js';

const EPOCHS = 3;
const [mode, dir, access, option] = process.argv.slice(2);
if (mode === 'make') {
  const s = CheckpointStore.open(dir);
  commitChain(s, 1, EPOCHS, new SyntheticVfs());
  s.close();
  console.log('made');
} else {
  try {
    const store = CheckpointStore.open(dir, { readOnly: access === 'ro' });
    const hide = /^hide-after-open=(\d+)$/.exec(option ?? '');
    if (hide !== null) {
      const file = join(dir, 'data.mdb');
      if (!hideLeafKeys(file, Number(hide[1]), lmdbLayout(file).pageBytes)) throw new Error(`page ${hide[1]} is not a leaf with several keys`);
    }
    const image = store.loadImage();
    const vfs = new SyntheticVfs();
    for (let e = 1; e <= EPOCHS; e++) vfs.step(e);
    const same = image !== null && image.epoch === EPOCHS && Buffer.compare(image.lvm.memory, expectedMemory(EPOCHS)) === 0 &&
      Buffer.compare(vfsOf(image.libos.vfs), vfs.vfs.save()) === 0;
    console.log(image === null ? 'null' : same ? 'same' : 'DIFFERENT');
  } catch (err) {
    console.log(`refused ${(err as { code?: string }).code} ${(err as Error).message}`);
  }
}
