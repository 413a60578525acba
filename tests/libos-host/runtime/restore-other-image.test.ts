import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { restoreLvm, type RestoreLaunchOptions } from '../../../libos-host/runtime/launch.js';
import { guestBytes } from '../../helpers/lvm.js';

test('restoring a checkpoint with a module that prepares to another image names both causes: another module or another waterbear', async (t) => {
  // The image check comes before any state is read: the rest of the options are never looked at.
  const err = await restoreLvm({
    guest: guestBytes('test/hello'), memoryLimitBytes: 16 * 1024 * 1024, imageSha256: 'ab'.repeat(32), cacheDir: null,
  } as RestoreLaunchOptions).catch((e: unknown) => e);
  t.true(isWaterbearError(err, 'WB_CHECKPOINT_VERSION'), String(err));
  t.regex((err as Error).message, /taken from image abababababab… but the guest module given prepares to [0-9a-f]{12}…: either the module is not the one the checkpoint was taken from \(restore with that module\), or another waterbear version prepared it/);
});
