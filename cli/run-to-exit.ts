import type { NodePlatform } from '../libos-host/platform/node-platform.js';
import type { LaunchedLvm } from '../libos-host/runtime/launch.js';
import type { CheckpointSession } from './checkpoint-session.js';
import type { ExtensionStack } from './extension-flags.js';
import { guestTrapMessage, TRAP_EXIT_CODE } from './exit-codes.js';
import type { CliIo } from './io.js';

/**
 * Launch (or restore) a guest with `launch`. When that throws, close what the command opened for
 * it (the checkpoint session, the platform's streams and listeners, the extension stack), so that
 * nothing keeps the process alive after the error, and rethrow.
 */
export async function launchOrClose(launch: () => Promise<LaunchedLvm>, platform: NodePlatform, stack: ExtensionStack, checkpoints: CheckpointSession | null): Promise<LaunchedLvm> {
  try {
    return await launch();
  } catch (err) {
    await checkpoints?.close();
    platform.closeAll();
    await stack.close();
    throw err;
  }
}

/**
 * Run a launched guest until it exits (SIGINT or SIGTERM stop it), then close everything it
 * holds. Returns the guest's exit code, TRAP_EXIT_CODE after a trap, or 1 when the checkpoint
 * session could not finish its last write (`waterbear run` and `waterbear restore`).
 */
export async function runToExit(launched: LaunchedLvm, platform: NodePlatform, stack: ExtensionStack, checkpoints: CheckpointSession | null, io: CliIo): Promise<number> {
  const { lvm, os } = launched;
  const onSignal = (sig: NodeJS.Signals): void => { io.err(`waterbear: ${sig}, stopping the guest\n`); lvm.stop(); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const exit = await lvm.run();
    if (checkpoints !== null && (await checkpoints.close()) !== null) return 1;
    if (exit.kind === 'trap') {
      io.err(guestTrapMessage(exit.error));
      return TRAP_EXIT_CODE;
    }
    return exit.code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await checkpoints?.close();
    os.closeAll();
    platform.closeAll();
    await stack.close();
  }
}
