import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { NodePlatform } from '../../libos-host/platform/node-platform.js';
import { launchLvm, type LaunchedLvm } from '../../libos-host/runtime/launch.js';
import type { LvmExit, LvmHooks } from '../../libos-host/runtime/lvm.js';
import type { DirSpec, ListenSpec } from '../../libos-host/wasi/lib-os.js';
import type { HostAbi } from '../../libos-host/abi/host-abi.js';

export const REPO = new URL('../../', import.meta.url).pathname;

export function guestBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(REPO, 'guests', `${name}.wasm`)));
}

/** A shared image cache for the test run, so each guest is prepared once. */
export const TEST_CACHE_DIR = join(tmpdir(), 'waterbear-test-image-cache');

export interface TestLvm extends LaunchedLvm {
  platform: NodePlatform;
  stdout: () => string;
  stderr: () => string;
  /** Bound address of listener i (host:port). */
  address: (i?: number) => string;
  port: (i?: number) => number;
  run: () => Promise<LvmExit>;
}

export interface TestLvmOptions {
  args?: string[];
  env?: string[];
  listen?: number; // how many listeners on 127.0.0.1:0
  listeners?: ListenSpec[];
  dirs?: DirSpec[];
  memoryLimitBytes?: number;
  stdin?: NodeJS.ReadableStream | null;
  wrapAbi?: (platform: NodePlatform) => HostAbi;
  hooks?: LvmHooks;
  /** The module to launch instead of the bundled guest `name` (which then only names it). */
  bytes?: Uint8Array;
}

/** Launch a bundled guest in-process with captured console output. */
export async function startGuest(name: string, o: TestLvmOptions = {}): Promise<TestLvm> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (d: Buffer) => out.push(d));
  stderr.on('data', (d: Buffer) => err.push(d));
  const platform = new NodePlatform({ stdout, stderr, stdin: (o.stdin ?? null) as never });
  const abi = o.wrapAbi ? o.wrapAbi(platform) : platform;
  const listeners: ListenSpec[] = o.listeners ?? Array.from({ length: o.listen ?? 0 }, () => ({ uri: 'tcp.srv:127.0.0.1:0' as const, name: null }));
  const launched = await launchLvm({
    guest: o.bytes ?? guestBytes(name), programName: `${name}.wasm`, args: o.args ?? [], env: o.env ?? [],
    listeners, dirs: o.dirs ?? [], memoryLimitBytes: o.memoryLimitBytes ?? 256 * 1024 * 1024, abi,
    cacheDir: TEST_CACHE_DIR, ...(o.hooks ? { hooks: o.hooks } : {}),
  });
  const address = (i = 0): string => launched.os.listeners()[i].address ?? '';
  let running: Promise<LvmExit> | null = null;
  return {
    ...launched,
    platform,
    stdout: () => Buffer.concat(out).toString(),
    stderr: () => Buffer.concat(err).toString(),
    address,
    port: (i = 0) => Number(address(i).split(':').pop()),
    run: () => {
      running ??= launched.lvm.run().finally(() => { launched.os.closeAll(); platform.closeAll(); });
      return running;
    },
  };
}
