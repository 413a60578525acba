import { WaterbearError } from '../../libos-host/errors.js';
import { NodePlatform } from '../../libos-host/platform/node-platform.js';
import { openDirStore, readCheckpointDir } from '../../checkpoint/checkpoint-dir.js';
import { restoreFromImage } from '../../checkpoint/restore.js';
import { parseSize } from '../../libos-host/units.js';
import { parseCommandArgs } from '../args.js';
import { CHECKPOINT_FLAG_OPTIONS, CheckpointSession, parseCheckpointInterval, trackerForRestore } from '../checkpoint-session.js';
import { buildExtensionStack } from '../extension-flags.js';
import type { CliIo } from '../io.js';
import { applyV8Tuning } from '../v8-tuning.js';
import { EventLoopTurns } from '../event-loop-turns.js';
import { launchOrClose, runToExit } from '../run-to-exit.js';

export const RESTORE_USAGE = `usage: waterbear restore DIR [options]

Resume, in this process, the LVM checkpointed into DIR by \`waterbear run --checkpoint-dir DIR\`:
its memory, globals, files and fds as of the latest complete checkpoint, listening again on the
same addresses. Connections that were open then are gone (the guest sees them reset). The
restored LVM goes on checkpointing into DIR.

  --checkpoint-interval T        checkpoint at most every T (default: as when DIR was created)
  --checkpoint-store-limit SIZE  refuse checkpoints that would grow the store beyond SIZE
  --no-checkpoint                do not take further checkpoints (DIR is left as it is)
  --no-cache                     do not cache the prepared image`;

/** `waterbear restore DIR` */
export async function restoreCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...CHECKPOINT_FLAG_OPTIONS,
    'no-checkpoint': { type: 'boolean' },
    'no-cache': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 'restore');
  if (values.help === true) { io.out(RESTORE_USAGE + '\n'); return 0; }
  applyV8Tuning();
  const dir = positionals[0];
  if (dir === undefined) throw new WaterbearError('WB_CONFIG_INVALID', `restore: missing DIR\n${RESTORE_USAGE}`);
  const { record, guest } = readCheckpointDir(dir);
  const intervalMs = parseCheckpointInterval(values['checkpoint-interval'], record.checkpointIntervalMs);
  const maxBytes = values['checkpoint-store-limit'] === undefined ? undefined : parseSize(values['checkpoint-store-limit'], '--checkpoint-store-limit');
  const continueCheckpointing = values['no-checkpoint'] !== true;
  const store = openDirStore(dir, { ...(maxBytes === undefined ? {} : { maxBytes }), readOnly: !continueCheckpointing });
  let session: CheckpointSession | null = null;
  const started = performance.now();
  let image;
  try {
    image = store.loadImageForRestore();
    if (image === null) throw new WaterbearError('WB_CONFIG_INVALID', `${dir} holds no complete checkpoint yet: nothing to restore`);
  } catch (err) {
    store.close();
    throw err;
  }
  if (continueCheckpointing) session = new CheckpointSession(dir, store, trackerForRestore(record), intervalMs, io);

  const platform = new NodePlatform();
  const f = record.extensionFlags;
  const stack = await buildExtensionStack(platform, { trace: f.trace ?? undefined, faults: f.faults, extensions: f.extensions });
  // Without checkpoints, the event-loop turns interrupt a busy guest (see run).
  const turns = session === null ? new EventLoopTurns() : null;
  let launched;
  try {
    launched = await launchOrClose(() => restoreFromImage(image, {
      guest, memoryLimitBytes: record.memoryLimitBytes, imageChoices: record.imageChoices, abi: stack.abi, extensions: stack.extensions,
      hooks: session?.hooks ?? turns?.hooks,
      ...(values['no-cache'] === true ? { cacheDir: null } : {}),
    }), platform, stack, session);
  } finally {
    if (session === null) store.close(); // the restore has read the pages it needed
  }
  const { os } = launched;
  session?.attach(launched, stack.extensions, image.epoch);
  turns?.attach(launched.lvm);
  io.err(`waterbear: restored epoch ${image.epoch} from ${dir} in ${(performance.now() - started).toFixed(1)} ms\n`);
  for (const l of os.listeners()) io.err(`waterbear: fd ${l.fd} listening on ${l.address}\n`);
  return runToExit(launched, platform, stack, session, io);
}
