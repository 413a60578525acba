/** Run a bundled guest in this process with an image prepared for a tracker (benchmarks). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { prepareImage, type PreparedImage } from '../../libos-host/image/prepare.js';
import { NodePlatform } from '../../libos-host/platform/node-platform.js';
import { Lvm, type LvmExit, type LvmHooks } from '../../libos-host/runtime/lvm.js';
import { LibOs } from '../../libos-host/wasi/lib-os.js';

export interface BenchGuestOptions {
  dirtyTracking?: 'instrument' | 'none';
  yieldPoints?: boolean;
  env?: string[];
  listen?: boolean;
  memoryLimitBytes?: number;
  hooks?: LvmHooks;
  cacheDir?: string | null;
}

export interface BenchGuest { lvm: Lvm; image: PreparedImage; port: number; run(): Promise<LvmExit>; stop(): Promise<void> }

export async function startBenchGuest(root: string, name: string, o: BenchGuestOptions = {}): Promise<BenchGuest> {
  const bytes = new Uint8Array(readFileSync(join(root, 'guests', `${name}.wasm`)));
  const image = await prepareImage(bytes, {
    memoryLimitBytes: o.memoryLimitBytes ?? 256 * 1024 * 1024, dirtyTracking: o.dirtyTracking ?? 'none', yieldPoints: o.yieldPoints ?? false,
    ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}),
  });
  const platform = new NodePlatform({ stdout: new PassThrough().resume(), stderr: new PassThrough().resume(), stdin: null });
  const os = await LibOs.create(platform, {
    args: [`${name}.wasm`], env: o.env ?? [], dirs: [],
    listeners: o.listen === true ? [{ uri: 'tcp.srv:127.0.0.1:0', name: null }] : [],
  });
  const lvm = Lvm.create(image, os, platform, o.hooks ?? {});
  const port = o.listen === true ? Number((os.listeners()[0].address ?? '').split(':').pop()) : 0;
  let running: Promise<LvmExit> | null = null;
  const run = (): Promise<LvmExit> => (running ??= lvm.run().finally(() => { os.closeAll(); platform.closeAll(); }));
  return { lvm, image, port, run, stop: async () => { lvm.stop(); await run(); } };
}
