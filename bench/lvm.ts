/**
 * bench:lvm — throughput of the KV guest in the LVM against the same kv.c compiled natively,
 * same client load, same run; plus the cost of Asyncify (image with vs without) on CPU-bound
 * guests, and Debian's redis-server as a reference point when installed.
 *
 *   npm run bench:lvm [-- --requests 100000 --requests-pipelined 1000000 --rounds 3 --out bench/results/lvm.txt]
 *
 * V8 compiles the guest in tiers, so the first seconds of an LVM are slower than its steady state.
 * Every server gets one warm-up pass of every test (shown, not counted), then `rounds` measured
 * passes interleaved across servers (noise on a shared machine hits all of them alike); the
 * median of the measured passes is compared.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { prepareImage, type PreparedImage } from '../libos-host/image/prepare.js';
import { NodePlatform } from '../libos-host/platform/node-platform.js';
import { Lvm } from '../libos-host/runtime/lvm.js';
import { LibOs } from '../libos-host/wasi/lib-os.js';
import { ProcExit } from '../libos-host/wasi/syscall-host.js';
import { WASI_MODULE } from '../libos-host/wasi/wasi-imports.js';
import { packageRoot } from '../cli/paths.js';
import { badOptionValue, benchArgs, OUT_OPTION } from './lib/args.js';
import { median } from './lib/stats.js';
import { runLoad, type LoadResult, type LoadSpec } from './support/load.js';
import { freePort, hasCommand, startServer, type BenchServer } from './support/servers.js';

/** Target from issue 2: LVM throughput at least half of native. */
const TARGET_LVM_OVER_NATIVE = 0.5;
const DEFAULT_REQUESTS = 100_000;
/** Pipelined tests run ~10x faster: more requests keep each one long enough to measure. */
const DEFAULT_REQUESTS_PIPELINED = 1_000_000;
const DEFAULT_ROUNDS = 3;
const CLIENTS = 50;
const PIPELINES = [1, 16];
const CPU_GUEST_RUNS = 3;

const values = benchArgs('npm run bench:lvm --', 'KV throughput in the LVM against the same kv.c built natively; the cost of Asyncify.', {
  requests: { type: 'string', help: `requests per run without pipelining (default ${DEFAULT_REQUESTS})` },
  'requests-pipelined': { type: 'string', help: `requests per run with pipelining (default ${DEFAULT_REQUESTS_PIPELINED})` },
  rounds: { type: 'string', help: `alternating rounds (default ${DEFAULT_ROUNDS})` },
  out: OUT_OPTION,
});
const requests = Number(values.requests ?? DEFAULT_REQUESTS);
const requestsPipelined = Number(values['requests-pipelined'] ?? DEFAULT_REQUESTS_PIPELINED);
const rounds = Number(values.rounds ?? DEFAULT_ROUNDS);
if (!(requests > 0 && requestsPipelined > 0 && Number.isInteger(rounds) && rounds >= 1)) {
  badOptionValue('--requests and --requests-pipelined must be positive, --rounds a positive integer');
}
const root = packageRoot();
const lines: string[] = [];
const say = (s: string): void => { lines.push(s); console.log(s); };

/** One pass of every test against one server. */
async function measureServer(server: BenchServer): Promise<Map<string, LoadResult>> {
  const out = new Map<string, LoadResult>();
  for (const pipeline of PIPELINES) {
    for (const test of ['set', 'get'] as const) {
      const spec: LoadSpec = { test, clients: CLIENTS, requests: pipeline > 1 ? requestsPipelined : requests, pipeline };
      out.set(`${test} P=${pipeline}`, await runLoad(server.port, spec));
    }
  }
  return out;
}

/** Per test, the pass with the median throughput (its latencies come with it). */
function medianPass(passes: Array<Map<string, LoadResult>>): Map<string, LoadResult> {
  const out = new Map<string, LoadResult>();
  for (const test of passes[0].keys()) {
    const sorted = passes.map((p) => p.get(test)!).sort((a, b) => a.rps - b.rps);
    out.set(test, sorted[Math.floor(sorted.length / 2)]);
  }
  return out;
}

/** Run a CPU-bound guest to completion, with the prepared image or the raw module. */
async function timeCpuGuest(bytes: Uint8Array, env: string[], image: PreparedImage | null): Promise<number> {
  const platform = new NodePlatform({ stdout: new PassThrough().resume(), stderr: new PassThrough().resume(), stdin: null });
  const os = await LibOs.create(platform, { args: ['guest'], env, listeners: [], dirs: [] });
  const t0 = process.hrtime.bigint();
  if (image !== null) {
    const start = process.hrtime.bigint();
    const exit = await Lvm.create(image, os, platform).run();
    if (exit.kind !== 'exit' || exit.code !== 0) throw new Error(`guest failed: ${JSON.stringify(exit)}`);
    return Number(process.hrtime.bigint() - start) / 1e6;
  }
  // The same library OS imports, no Asyncify: fine for guests that never block.
  const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  const instance = new WebAssembly.Instance(module, { [WASI_MODULE]: os.imports() });
  os.attach(instance.exports.memory as WebAssembly.Memory, { block: () => { throw new Error('raw module cannot block'); }, resumed: null });
  try {
    (instance.exports._start as () => void)();
  } catch (err) {
    if (!(err instanceof ProcExit) || err.code !== 0) throw err;
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main(): Promise<void> {
  say(`# bench:lvm  ${new Date().toISOString()}`);
  say(`# command: npm run bench:lvm -- --requests ${requests} --requests-pipelined ${requestsPipelined} --rounds ${rounds}`);
  say(`# machine: ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} cores, node ${process.version}`);
  say(`# load: ${CLIENTS} clients, pipeline ${PIPELINES.join(' and ')}, 16-byte values; ${requests} requests per test at P=1, ${requestsPipelined} pipelined`);
  say(`# method: all servers up at once; one warm-up pass each (V8 tiers up the guest), then ${rounds} passes interleaved across servers; median pass shown`);

  const nativeDir = mkdtempSync(join(tmpdir(), 'wb-bench-native-'));
  const build = spawnSync(process.execPath, [join(root, 'guests/build.mjs'), '--native', nativeDir], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`native build failed: ${build.stderr}`);

  const servers: Array<[string, () => Promise<BenchServer>]> = [
    ['native kv.c', async () => { const p = await freePort(); return startServer('native', p, join(nativeDir, 'kv'), [], { WB_NATIVE_LISTEN: `127.0.0.1:${p}` }); }],
    ['LVM kv.wasm', async () => { const p = await freePort(); return startServer('lvm', p, process.execPath, [join(root, 'cli/waterbear.js'), 'run', join(root, 'guests/kv.wasm'), '--listen', `127.0.0.1:${p}`]); }],
  ];
  if (hasCommand('redis-server')) {
    servers.push(['redis-server (reference)', async () => {
      const p = await freePort();
      return startServer('redis', p, 'redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    }]);
  }
  const running = new Map<string, BenchServer>();
  const warmup = new Map<string, Map<string, LoadResult>>();
  const passes = new Map<string, Array<Map<string, LoadResult>>>();
  try {
    for (const [name, start] of servers) running.set(name, await start());
    for (const [name, server] of running) warmup.set(name, await measureServer(server));
    for (let round = 0; round < rounds; round++) {
      // Rotate the order so no server always runs right after another's load.
      const order = [...running].map((_, i, all) => all[(i + round) % all.length]);
      for (const [name, server] of order) {
        const list = passes.get(name) ?? [];
        list.push(await measureServer(server));
        passes.set(name, list);
      }
    }
  } finally {
    for (const server of running.values()) await server.stop();
  }
  const results = new Map([...passes].map(([name, list]) => [name, medianPass(list)]));
  rmSync(nativeDir, { recursive: true, force: true });

  const tool = [...results.values()][0].values().next().value?.tool ?? '?';
  say(`# load generator: ${tool}`);
  say('');
  say(`${'server'.padEnd(26)} ${'test'.padEnd(10)} ${'req/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}  each pass req/s (warm-up first)`);
  for (const [name, r] of results) {
    for (const [test, v] of r) {
      const each = [warmup.get(name)!, ...passes.get(name)!].map((p) => p.get(test)!.rps.toFixed(0));
      say(`${name.padEnd(26)} ${test.padEnd(10)} ${v.rps.toFixed(0).padStart(10)} ${(v.p50Ms?.toFixed(3) ?? '-').padStart(8)} ${(v.p99Ms?.toFixed(3) ?? '-').padStart(8)}  [${each[0]}] ${each.slice(1).join(', ')}`);
    }
  }
  say('');
  const native = results.get('native kv.c')!;
  const lvm = results.get('LVM kv.wasm')!;
  let worst = Infinity;
  for (const [test, v] of lvm) {
    const ratio = v.rps / native.get(test)!.rps;
    worst = Math.min(worst, ratio);
    const cold = warmup.get('LVM kv.wasm')!.get(test)!.rps / warmup.get('native kv.c')!.get(test)!.rps;
    say(`LVM / native  ${test.padEnd(10)} ${ratio.toFixed(2)}x   (warm-up pass: ${cold.toFixed(2)}x)`);
  }
  say(`target: LVM >= ${TARGET_LVM_OVER_NATIVE}x native throughput (worst case ${worst.toFixed(2)}x): ${worst >= TARGET_LVM_OVER_NATIVE ? 'PASS' : 'MISS'}`);

  say('');
  say('# Asyncify cost: CPU-bound guests, same library OS, prepared image vs the raw module (median of ' + CPU_GUEST_RUNS + ')');
  for (const [guest, env] of [['test/compute', ['ROUNDS=60']], ['test/allocstress', ['SEED=3']]] as const) {
    const bytes = new Uint8Array(readFileSync(join(root, 'guests', `${guest}.wasm`)));
    const image = await prepareImage(bytes, { cacheDir: null });
    const raw: number[] = [];
    const prep: number[] = [];
    for (let i = 0; i < CPU_GUEST_RUNS; i++) {
      raw.push(await timeCpuGuest(bytes, [...env], null));
      prep.push(await timeCpuGuest(bytes, [...env], image));
    }
    say(`${guest.padEnd(18)} raw ${median(raw).toFixed(1)} ms, prepared ${median(prep).toFixed(1)} ms: ${(median(prep) / median(raw)).toFixed(2)}x time; code ${bytes.length} -> ${image.bytes.length} bytes (${(image.bytes.length / bytes.length).toFixed(2)}x)`);
  }
  if (values.out !== undefined) writeFileSync(values.out, lines.join('\n') + '\n');
}

await main();
