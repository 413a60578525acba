/**
 * Restoring an LVM from a RestoreImage (from the store or a CheckpointChain) in this process:
 * extension state first (the library OS re-binds its listeners through the stack), then the
 * library OS and the runtime state via libos-host's `restoreLvm`. `lvm.run()` then rewinds the
 * guest into the import it was suspended in; its monotonic clock continues where it was.
 */
import type { Extension, HostAbi } from '../libos-host/abi/host-abi.js';
import { restoreStackState } from '../libos-host/extensions/stack-state.js';
import { restoreLvm, type ImageChoices, type LaunchedLvm } from '../libos-host/runtime/launch.js';
import type { LvmHooks, MemoryContents } from '../libos-host/runtime/lvm.js';
import type { RestoreImage } from './restore-image.js';

export interface RestoreOptions {
  /** The guest module the checkpoint was taken from. */
  guest: Uint8Array;
  memoryLimitBytes: number;
  /** The image choices the checkpointed LVM was prepared with. */
  imageChoices?: ImageChoices;
  /** The top of the extension stack (or the platform). */
  abi: HostAbi;
  /** The stack's extensions bottom-up: the same kinds, in the same order, as when captured. */
  extensions?: readonly Extension[];
  hooks?: LvmHooks;
  cacheDir?: string | null;
}

/**
 * Bring the LVM captured in `image` back to life. Throws WB_CONFIG_INVALID when the extension
 * stack differs from the captured one, WB_CHECKPOINT_VERSION when the guest prepares to another
 * image, WB_CHECKPOINT_CORRUPT when the state does not fit it, WB_LISTEN_FAILED when a
 * listener's address is taken.
 */
export async function restoreFromImage(image: RestoreImage<Uint8Array | MemoryContents>, o: RestoreOptions): Promise<LaunchedLvm> {
  const extensions = o.extensions ?? [];
  if (image.extensions !== null || extensions.length > 0) {
    restoreStackState(extensions, image.extensions ?? { v: 1, extensions: [] });
  }
  return restoreLvm({
    guest: o.guest, memoryLimitBytes: o.memoryLimitBytes, imageSha256: image.imageSha256, abi: o.abi,
    libos: image.libos, lvm: image.lvm,
    ...(o.imageChoices !== undefined ? { imageChoices: o.imageChoices } : {}),
    ...(o.hooks !== undefined ? { hooks: o.hooks } : {}),
    ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}),
  });
}
