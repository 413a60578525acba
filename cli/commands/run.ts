import { readFileSync } from 'node:fs';
import { WaterbearError } from '../../libos-host/errors.js';
import { NodePlatform } from '../../libos-host/platform/node-platform.js';
import { launchLvm, type ImageChoices } from '../../libos-host/runtime/launch.js';
import { parseMemoryLimit } from '../../libos-host/image/memory-limit.js';
import { parseCommandArgs, parseDirFlag, parseEnvFlag, parseListenFlag } from '../args.js';
import { buildExtensionStack } from '../extension-flags.js';
import type { CliIo } from '../io.js';
import { EventLoopTurns } from '../event-loop-turns.js';
import { launchOrClose, runToExit } from '../run-to-exit.js';
import { applyV8Tuning } from '../v8-tuning.js';
import { CHECKPOINT_FLAG_OPTIONS, startCheckpointing, type CheckpointSession } from '../checkpoint-session.js';

export const RUN_USAGE = `usage: waterbear run GUEST.wasm [options] [-- guest args…]

Run an unmodified WASI (preview 1) guest in a lightweight VM.

  --listen [name=]HOST:PORT   pre-open a TCP listener for the guest (fd 3, 4, … in order; port 0 = any)
  --dir GUEST=HOST            copy a host directory into the guest's file system at start
  --env K=V                   set an environment variable for the guest (repeatable)
  --arg VALUE                 append an argument for the guest (repeatable; or put them after --)
  --memory-limit SIZE         cap the guest's linear memory (default 256MiB)
  --trace FILE                write an strace-like JSON line per host call to FILE
  --fault RULE                inject faults, e.g. call=read,errno=ECONNRESET,p=0.01 (repeatable)
  --extension SPEC            stack an extension: trace[:file=F], metrics, fault:RULE (repeatable)
  --no-cache                  do not cache the prepared image
  --checkpoint-dir DIR        checkpoint the LVM into DIR (guest, launch options, LMDB store);
                              resume it with \`waterbear restore DIR\`
  --checkpoint-interval T     checkpoint at most every T, at a suspension point (default 50ms; 1ms–10s)
  --tracker KIND              dirty-page tracker: auto (default), instrument, uffd, shadow
  --checkpoint-store-limit SIZE  refuse checkpoints that would grow the store beyond SIZE

The exit code and stderr follow the guest; a guest trap prints the trap and the guest function
and exits with 134.`;

export const DEFAULT_MEMORY_LIMIT = '256MiB';

/** `waterbear run` */
export async function runCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    listen: { type: 'string', multiple: true },
    dir: { type: 'string', multiple: true },
    env: { type: 'string', multiple: true },
    arg: { type: 'string', multiple: true },
    'memory-limit': { type: 'string' },
    trace: { type: 'string' },
    fault: { type: 'string', multiple: true },
    extension: { type: 'string', multiple: true },
    'no-cache': { type: 'boolean' },
    'checkpoint-dir': { type: 'string' },
    tracker: { type: 'string' },
    ...CHECKPOINT_FLAG_OPTIONS,
    help: { type: 'boolean', short: 'h' },
  }, 'run');
  if (values.help === true) { io.out(RUN_USAGE + '\n'); return 0; }
  applyV8Tuning();
  const [guestPath, ...restArgs] = positionals;
  if (guestPath === undefined) throw new WaterbearError('WB_CONFIG_INVALID', `run: missing GUEST.wasm\n${RUN_USAGE}`);
  let guest: Uint8Array;
  try {
    guest = new Uint8Array(readFileSync(guestPath));
  } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `run: cannot read ${guestPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const listeners = (values.listen ?? []).map(parseListenFlag);
  const memoryLimitBytes = parseMemoryLimit(values['memory-limit'] ?? DEFAULT_MEMORY_LIMIT, '--memory-limit');
  if (values['checkpoint-dir'] === undefined && (values['checkpoint-interval'] ?? values.tracker ?? values['checkpoint-store-limit']) !== undefined) {
    throw new WaterbearError('WB_CONFIG_INVALID', 'run: --checkpoint-interval, --tracker and --checkpoint-store-limit need --checkpoint-dir DIR');
  }
  let checkpoints: CheckpointSession | null = null;
  // Yield points let the event-loop turns (or the checkpointer) interrupt a guest that computes.
  let imageChoices: ImageChoices = { yieldPoints: true };
  if (values['checkpoint-dir'] !== undefined) {
    const started = startCheckpointing({
      dir: values['checkpoint-dir'], guest, programName: guestPath, memoryLimitBytes,
      intervalText: values['checkpoint-interval'], trackerText: values.tracker, storeLimitText: values['checkpoint-store-limit'],
      extensionFlags: { trace: values.trace ?? null, faults: values.fault ?? [], extensions: values.extension ?? [] },
    }, io);
    checkpoints = started.session;
    imageChoices = started.imageChoices;
  }
  const platform = new NodePlatform();
  const stack = await buildExtensionStack(platform, {
    trace: values.trace, faults: values.fault ?? [], extensions: values.extension ?? [],
  });
  // Without checkpoints, the event-loop turns interrupt a busy guest (the checkpointer does it otherwise).
  const turns = checkpoints === null ? new EventLoopTurns() : null;
  const launched = await launchOrClose(() => launchLvm({
    guest, programName: guestPath, args: [...(values.arg ?? []), ...restArgs], env: (values.env ?? []).map(parseEnvFlag),
    listeners, dirs: (values.dir ?? []).map(parseDirFlag), memoryLimitBytes, abi: stack.abi, imageChoices,
    hooks: checkpoints?.hooks ?? turns?.hooks,
    ...(values['no-cache'] === true ? { cacheDir: null } : {}),
  }), platform, stack, checkpoints);
  const { os } = launched;
  checkpoints?.attach(launched, stack.extensions);
  turns?.attach(launched.lvm);
  // The operator asked for "any port": say which one the guest got.
  for (const l of os.listeners()) {
    if (/:0$/.test(l.uri)) io.err(`waterbear: fd ${l.fd} listening on ${l.address}\n`);
  }
  return runToExit(launched, platform, stack, checkpoints, io);
}
