import { basename } from 'node:path';
import type { HostAbi } from '../abi/host-abi.js';
import { WaterbearError } from '../errors.js';
import { prepareImage, type PrepareOptions, type PreparedImage } from '../image/prepare.js';
import { LibOs, type DirSpec, type LibOsRestoreState, type ListenSpec } from '../wasi/lib-os.js';
import { Lvm, type LvmHooks, type LvmRestoreState } from './lvm.js';

/** Everything needed to start a guest in a fresh LVM. */
export interface LaunchOptions {
  /** The guest module's bytes. */
  guest: Uint8Array;
  /** argv[0] the guest sees (by convention the module's file name). */
  programName: string;
  args: readonly string[];
  env: readonly string[];
  listeners: readonly ListenSpec[];
  dirs: readonly DirSpec[];
  /** Cap on the guest's own linear memory (bytes). */
  memoryLimitBytes: number;
  /** The host ABI: the platform, possibly under a stack of extensions. */
  abi: HostAbi;
  hooks?: LvmHooks;
  /** Image cache directory; null disables the cache. Default: see prepareImage. */
  cacheDir?: string | null;
  /** Preparation choices (default: none). */
  imageChoices?: ImageChoices;
}

export interface LaunchedLvm { lvm: Lvm; os: LibOs; image: PreparedImage }

/** Preparation choices that shape the image (the dirty tracker's needs, yield points). */
export type ImageChoices = Pick<PrepareOptions, 'dirtyTracking' | 'yieldPoints'>;

/**
 * Prepare the image, build the library OS (binding listeners) and instantiate the guest. When it
 * throws (see prepareImage, LibOs.create and Lvm.create), no listener of the guest stays bound.
 */
export async function launchLvm(o: LaunchOptions): Promise<LaunchedLvm> {
  const image = await prepareImage(o.guest, {
    memoryLimitBytes: o.memoryLimitBytes,
    ...o.imageChoices,
    ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}),
  });
  const os = await LibOs.create(o.abi, {
    args: [basename(o.programName), ...o.args], env: o.env, listeners: o.listeners, dirs: o.dirs,
  });
  try {
    const lvm = Lvm.create(image, os, o.abi, o.hooks ?? {});
    return { lvm, os, image };
  } catch (err) {
    os.closeAll();
    throw err;
  }
}

/** Everything needed to bring a captured LVM back to life (the state comes from `checkpoint/`). */
export interface RestoreLaunchOptions {
  /** The guest module's bytes (the same module the checkpoint was taken from). */
  guest: Uint8Array;
  /** The memory limit the checkpointed LVM was launched with (it shapes the image). */
  memoryLimitBytes: number;
  /** sha256 of the prepared image the checkpoint was taken from; checked when given. */
  imageSha256?: string;
  abi: HostAbi;
  hooks?: LvmHooks;
  cacheDir?: string | null;
  /** The preparation choices the checkpointed LVM was launched with. */
  imageChoices?: ImageChoices;
  libos: LibOsRestoreState;
  lvm: LvmRestoreState;
}

/**
 * Prepare the image, restore the library OS (re-binding listeners) and load the captured state
 * into a fresh instance; `lvm.run()` then rewinds the guest into the call it was suspended in.
 * Throws WB_CHECKPOINT_VERSION when the guest prepares to another image than the checkpoint's
 * (another module, or another waterbear or binaryen version), WB_CHECKPOINT_CORRUPT when the state does not fit
 * the image, WB_LISTEN_FAILED when a listener cannot be bound again.
 */
export async function restoreLvm(o: RestoreLaunchOptions): Promise<LaunchedLvm> {
  const image = await prepareImage(o.guest, {
    memoryLimitBytes: o.memoryLimitBytes,
    ...o.imageChoices,
    ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}),
  });
  if (o.imageSha256 !== undefined && image.imageSha256 !== o.imageSha256) {
    throw new WaterbearError('WB_CHECKPOINT_VERSION',
      `the checkpoint was taken from image ${o.imageSha256.slice(0, 12)}… but the guest module given prepares to ${image.imageSha256.slice(0, 12)}…: ` +
      'either the module is not the one the checkpoint was taken from (restore with that module), or another waterbear version ' +
      'prepared it (restore with the version that took the checkpoint)', { details: { expected: o.imageSha256, actual: image.imageSha256 } });
  }
  const os = await LibOs.restore(o.abi, o.libos);
  try {
    const lvm = Lvm.restore(image, os, o.abi, o.lvm, o.hooks ?? {});
    return { lvm, os, image };
  } catch (err) {
    os.closeAll();
    throw err;
  }
}
