import { basename } from 'node:path';
import type { HostAbi } from '../abi/host-abi.js';
import { prepareImage, type PreparedImage } from '../image/prepare.js';
import { LibOs, type DirSpec, type ListenSpec } from '../wasi/lib-os.js';
import { Lvm, type LvmHooks } from './lvm.js';

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
}

export interface LaunchedLvm { lvm: Lvm; os: LibOs; image: PreparedImage }

/** Prepare the image, build the library OS (binding listeners) and instantiate the guest. */
export async function launchLvm(o: LaunchOptions): Promise<LaunchedLvm> {
  const image = await prepareImage(o.guest, {
    memoryLimitBytes: o.memoryLimitBytes,
    ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}),
  });
  const os = await LibOs.create(o.abi, {
    args: [basename(o.programName), ...o.args], env: o.env, listeners: o.listeners, dirs: o.dirs,
  });
  const lvm = Lvm.create(image, os, o.abi, o.hooks ?? {});
  return { lvm, os, image };
}
