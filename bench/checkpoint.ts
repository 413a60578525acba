/**
 * bench:checkpoint — what dirty-page tracking costs, for each tracker, against baselines measured
 * in the same run:
 *   1. guest pause per checkpoint (tracker collect + copy of the dirty pages) at 0/1/10/50 % dirty,
 *      for 64 MiB and 1 GiB of guest memory, against a plain memcpy of the same number of bytes;
 *   2. guest slowdown with each tracker (checkpointing every CHECKPOINT_INTERVAL_MS) on memstress
 *      and on the KV service under redis-benchmark, against the same guest without a tracker;
 *   3. restore of a 1 GiB image by `waterbear restore` from a real checkpoint directory, against
 *      the bare copy of 262,144 pages into a fresh instance (no store) measured in the same run;
 *   4. the cost of yield points (and of store instrumentation) on a CPU-bound guest.
 * Prints PASS/MISS against the targets of issue 3.
 *
 *   npm run bench:checkpoint [-- --out bench/results/checkpoint.txt] [--quick] [--sections 1,2,3,4]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { TRACK_PAGE_BYTES, type DirtyTracker, type TrackerKind } from '../checkpoint/trackers/dirty-tracker.js';
import { InstrumentTracker } from '../checkpoint/trackers/instrument-tracker.js';
import { populateImplementation } from '../checkpoint/memory-populate.js';
import { ShadowTracker } from '../checkpoint/trackers/shadow-tracker.js';
import { UffdTracker, uffdAvailability } from '../checkpoint/trackers/uffd-tracker.js';
import { packageRoot } from '../cli/paths.js';
import { prepareImage, type PreparedImage } from '../libos-host/image/prepare.js';
import { NodePlatform } from '../libos-host/platform/node-platform.js';
import { Lvm } from '../libos-host/runtime/lvm.js';
import { LibOs } from '../libos-host/wasi/lib-os.js';
import { benchArgs, OUT_OPTION } from './lib/args.js';
import { startBenchGuest, type BenchGuest } from './lib/guest.js';
import { measureCliRestore } from './lib/cli-restore.js';
import { LineClient } from './lib/line-client.js';
import { runKvLoad, type KvLoad } from './lib/load.js';
import { copyDirtyPages } from './lib/page-copy.js';
import { median, msSince, prng, samplePages } from './lib/stats.js';
import { touchGuest } from './lib/touch-module.js';
import { hasCommand } from './support/servers.js';

// ---- targets (issue 3)
const TARGET_PAUSE_OVER_MEMCPY = 2;
const TARGET_PAUSE_SLACK_MS = 0.1;
const TARGET_1PCT_64MIB_MS = 0.3;
const TARGET_RESTORE_1GIB_MS = 1000;
const TARGET_KV_SLOWDOWN = 1.2;

// ---- tunables
const MIB = 1024 * 1024;
const SIZES_BYTES = [64 * MIB, 1024 * MIB];
const DIRTY_FRACTIONS = [0, 0.01, 0.1, 0.5];
/** Repetitions per pause measurement (median), by memory size. */
const PAUSE_REPS = new Map([[64 * MIB, 15], [1024 * MIB, 5]]);
const PAUSE_WARMUP_REPS = 3;
/** Checkpoint interval while measuring guest slowdown. */
const CHECKPOINT_INTERVAL_MS = 50;
const SLOWDOWN_REPS = 7;
const KV_LOADS: KvLoad[] = [
  { test: 'set', clients: 50, requests: 500_000, pipeline: 16, valueBytes: 16, keys: 10_000 },
  { test: 'get', clients: 50, requests: 500_000, pipeline: 16, valueBytes: 16, keys: 10_000 },
];
const MEMSTRESS_MIB = 64;
/** Section 3: memstress's buffer, so that its memory is a little over 1 GiB. */
const RESTORE_BUFFER_MIB = 1024;
const RESTORE_REPS = 3;
const MEMSTRESS_CONNECTIONS = 4;
/** Wall time of one memstress run; each connection sends TOUCH requests until it is over. */
const MEMSTRESS_RUN_MS = 1000;
const MEMSTRESS_TOUCH = 16384;
const COMPUTE_ROUNDS = 60;
const COMPUTE_REPS = 7;
const SEED = 0x5eed;

const values = benchArgs('npm run bench:checkpoint --', 'Guest pause per checkpoint per tracker against memcpy (1), tracker slowdown (2), restore of a 1 GiB image (3), yield points (4).', {
  out: OUT_OPTION,
  quick: { type: 'boolean', help: 'fewer repetitions (a format check, not a measurement)' },
  sections: { type: 'string', help: 'which sections, e.g. 1,3 (default 1,2,3,4)' },
});
/** Which sections to run (--sections 1,3): all by default. */
const sections = new Set((values.sections ?? '1,2,3,4').split(',').map((x) => Number(x.trim())));
const quick = values.quick === true;
const root = packageRoot();
const lines: string[] = [];
const say = (s = ''): void => { lines.push(s); console.log(s); };
const fmt = (ms: number): string => (ms < 1 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(2) : ms.toFixed(0));
const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS');

const uffd = uffdAvailability();
const KINDS: TrackerKind[] = uffd.available ? ['instrument', 'uffd', 'shadow'] : ['instrument', 'shadow'];

function makeTracker(kind: TrackerKind, map: { dirtyMapAddr: number; dirtyMapBytes: number }): DirtyTracker {
  if (kind === 'instrument') return new InstrumentTracker(map);
  if (kind === 'uffd') return new UffdTracker();
  return new ShadowTracker();
}

// ------------------------------------------------------------------ 1. pause

interface PauseRow { sizeBytes: number; fraction: number; pages: number; memcpyMs: number; contiguousMs: number; byKind: Map<TrackerKind, { collectMs: number; copyMs: number; totalMs: number; reported: number }> }

async function pauses(): Promise<PauseRow[]> {
  const rows: PauseRow[] = [];
  for (const sizeBytes of SIZES_BYTES) {
    const reps = quick ? 3 : PAUSE_REPS.get(sizeBytes)!;
    const guestPages = sizeBytes / TRACK_PAGE_BYTES;
    const dst = new Uint8Array(Math.ceil(guestPages * Math.max(...DIRTY_FRACTIONS)) * TRACK_PAGE_BYTES + 4 * MIB);
    dst.fill(1); // commit the destination once, as a long-lived checkpoint buffer would be
    const sizeRows: PauseRow[] = DIRTY_FRACTIONS.map((fraction) => ({ sizeBytes, fraction, pages: Math.round(guestPages * fraction), memcpyMs: 0, contiguousMs: 0, byKind: new Map() }));

    for (const kind of KINDS) {
      const guest = await touchGuest(sizeBytes, kind === 'instrument');
      const tracker = makeTracker(kind, guest.map);
      const rnd = prng(SEED);
      guest.touch(samplePages(guestPages, guestPages, rnd)); // populate the whole memory first
      tracker.arm(guest.memory);
      for (const row of sizeRows) {
        const collect: number[] = [];
        const copy: number[] = [];
        const total: number[] = [];
        let reported = 0;
        for (let rep = -PAUSE_WARMUP_REPS; rep < reps; rep++) { // negative reps warm up (JIT)
          const pages = samplePages(guestPages, row.pages, rnd);
          guest.touch(pages);
          const t0 = process.hrtime.bigint();
          const got = tracker.collect(guest.memory);
          const t1 = process.hrtime.bigint();
          copyDirtyPages(new Uint8Array(guest.memory.buffer), got, dst);
          const t2 = process.hrtime.bigint();
          if (got.length < pages.length) throw new Error(`${kind} reported ${got.length} pages, ${pages.length} were written`);
          if (rep < 0) continue;
          collect.push(Number(t1 - t0) / 1e6);
          copy.push(Number(t2 - t1) / 1e6);
          total.push(Number(t2 - t0) / 1e6);
          reported = got.length;
        }
        row.byKind.set(kind, { collectMs: median(collect), copyMs: median(copy), totalMs: median(total), reported });
      }
      tracker.close();
    }

    // Baselines, on memory just written the same way (same number of random pages, one byte each):
    // a memcpy of exactly those dirty pages (4 KiB each, no tracker), and one memcpy of the same
    // number of bytes from a contiguous region at a random place (for reference).
    const plain = await touchGuest(sizeBytes, false);
    const rnd = prng(SEED + 1);
    plain.touch(samplePages(guestPages, guestPages, rnd));
    const src = new Uint8Array(plain.memory.buffer);
    for (const row of sizeRows) {
      const scattered: number[] = [];
      const contiguous: number[] = [];
      for (let rep = -PAUSE_WARMUP_REPS; rep < reps; rep++) {
        const pages = samplePages(guestPages, row.pages, rnd);
        plain.touch(pages);
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < pages.length; i++) dst.set(src.subarray(pages[i] * TRACK_PAGE_BYTES, (pages[i] + 1) * TRACK_PAGE_BYTES), i * TRACK_PAGE_BYTES);
        if (rep >= 0) scattered.push(msSince(t0));
        const n = row.pages * TRACK_PAGE_BYTES;
        const from = Math.floor(rnd() * (guestPages - row.pages)) * TRACK_PAGE_BYTES;
        const t1 = process.hrtime.bigint();
        dst.set(src.subarray(from, from + n));
        if (rep >= 0) contiguous.push(msSince(t1));
      }
      row.memcpyMs = median(scattered);
      row.contiguousMs = median(contiguous);
    }
    rows.push(...sizeRows);
  }
  return rows;
}

// ------------------------------------------------------------------ 2. slowdown

type Config = 'none' | TrackerKind;

/** A guest with a tracker that checkpoints (collect + copy) every CHECKPOINT_INTERVAL_MS at its suspensions. */
async function trackedGuest(name: string, config: Config, env: string[]): Promise<{ guest: BenchGuest; checkpoints: () => number; close: () => Promise<void> }> {
  let tracker: DirtyTracker | null = null;
  let last = 0n;
  let count = 0;
  let dst = new Uint8Array(16 * MIB);
  const guest = await startBenchGuest(root, name, {
    dirtyTracking: config === 'instrument' ? 'instrument' : 'none', listen: true, env,
    hooks: {
      onSuspended: (lvm) => {
        if (tracker === null) return;
        const now = process.hrtime.bigint();
        if (Number(now - last) / 1e6 < CHECKPOINT_INTERVAL_MS) return;
        last = now;
        const pages = tracker.collect(lvm.memory);
        if (pages.length * TRACK_PAGE_BYTES > dst.length) dst = new Uint8Array(pages.length * TRACK_PAGE_BYTES * 2);
        copyDirtyPages(new Uint8Array(lvm.memory.buffer), pages, dst);
        count++;
      },
    },
  });
  if (config !== 'none') {
    tracker = config === 'instrument' ? InstrumentTracker.forImage(guest.image) : config === 'uffd' ? new UffdTracker() : new ShadowTracker();
    tracker.arm(guest.lvm.memory);
  }
  void guest.run();
  return { guest, checkpoints: () => count, close: async () => { await guest.stop(); tracker?.close(); } };
}

async function memstressLoad(port: number): Promise<number> {
  const clients = await Promise.all(Array.from({ length: MEMSTRESS_CONNECTIONS }, () => LineClient.connect(port)));
  const runMs = quick ? MEMSTRESS_RUN_MS / 4 : MEMSTRESS_RUN_MS;
  let requests = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(clients.map(async (c) => {
    while (msSince(t0) < runMs) {
      const reply = await c.request(`TOUCH ${MEMSTRESS_TOUCH}`);
      if (!reply.startsWith('OK')) throw new Error(`memstress: ${reply}`);
      requests++;
    }
  }));
  const secs = msSince(t0) / 1000;
  for (const c of clients) c.close();
  return (requests * MEMSTRESS_TOUCH) / secs;
}

/** `xs` rotated left by `by` (so that no configuration always runs first). */
function rotate<T>(xs: readonly T[], by: number): T[] {
  const k = ((by % xs.length) + xs.length) % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

interface SlowdownResult { label: string; unit: string; byConfig: Map<Config, { rate: number; checkpoints: number }> }

async function slowdown(): Promise<SlowdownResult[]> {
  const configs: Config[] = ['none', ...KINDS];
  const results: SlowdownResult[] = [];
  const reps = quick ? 1 : SLOWDOWN_REPS;

  // memstress
  {
    const guests = new Map<Config, Awaited<ReturnType<typeof trackedGuest>>>();
    for (const c of configs) guests.set(c, await trackedGuest('memstress', c, [`MEMSTRESS_MB=${MEMSTRESS_MIB}`]));
    const rates = new Map<Config, number[]>(configs.map((c) => [c, []]));
    for (let rep = -1; rep < reps; rep++) {
      for (const c of rotate(configs, rep)) {
        const r = await memstressLoad(guests.get(c)!.guest.port);
        if (rep >= 0) rates.get(c)!.push(r);
      }
    }
    results.push({
      label: `memstress ${MEMSTRESS_MIB} MiB, ${MEMSTRESS_CONNECTIONS} connections sending TOUCH ${MEMSTRESS_TOUCH} (a write to every page) for ${quick ? MEMSTRESS_RUN_MS / 4 : MEMSTRESS_RUN_MS} ms`, unit: 'page writes/s',
      byConfig: new Map(configs.map((c) => [c, { rate: median(rates.get(c)!), checkpoints: guests.get(c)!.checkpoints() }])),
    });
    for (const g of guests.values()) await g.close();
  }

  // KV
  for (const load of KV_LOADS) {
    const guests = new Map<Config, Awaited<ReturnType<typeof trackedGuest>>>();
    for (const c of configs) guests.set(c, await trackedGuest('kv', c, []));
    const rates = new Map<Config, number[]>(configs.map((c) => [c, []]));
    let tool = '';
    const l = quick ? { ...load, requests: 50_000 } : load;
    for (let rep = -1; rep < reps; rep++) {
      for (const c of rotate(configs, rep)) {
        const r = await runKvLoad(guests.get(c)!.guest.port, l);
        tool = r.tool;
        if (rep >= 0) rates.get(c)!.push(r.rps);
      }
    }
    results.push({
      label: `kv ${load.test.toUpperCase()} (${tool}: ${load.clients} clients, pipeline ${load.pipeline}, ${l.requests} requests, ${load.valueBytes}-byte values)`, unit: 'req/s',
      byConfig: new Map(configs.map((c) => [c, { rate: median(rates.get(c)!), checkpoints: guests.get(c)!.checkpoints() }])),
    });
    for (const g of guests.values()) await g.close();
  }
  return results;
}

// ------------------------------------------------------------------ 3. restore

async function restore1GiB(): Promise<{ totalMs: number; instantiateMs: number; growMs: number; copyMs: number; pages: number }> {
  const sizeBytes = 1024 * MIB;
  const bytes = new Uint8Array(readFileSync(join(root, 'guests', 'memstress.wasm')));
  const image = await prepareImage(bytes, { memoryLimitBytes: sizeBytes + 64 * MIB });
  // The pages, as a store hands them out: one buffer per 4 KiB page, each with its own content.
  const pageCount = sizeBytes / TRACK_PAGE_BYTES;
  const pages: Uint8Array[] = new Array(pageCount);
  const slab = new Uint8Array(64 * MIB);
  for (let i = 0; i < slab.length; i += 4) slab[i] = (i >>> 12) & 0xff;
  for (let p = 0; p < pageCount; p++) {
    const at = (p * TRACK_PAGE_BYTES) % slab.length;
    pages[p] = slab.subarray(at, at + TRACK_PAGE_BYTES);
  }
  const stub = (): number => 0;
  const imports: WebAssembly.Imports = {};
  for (const imp of WebAssembly.Module.imports(image.module)) {
    if (imp.kind === 'function') ((imports[imp.module] ??= {}) as Record<string, unknown>)[imp.name] = stub;
  }
  const times: Array<{ totalMs: number; instantiateMs: number; growMs: number; copyMs: number }> = [];
  for (let rep = 0; rep < (quick ? 1 : 3); rep++) {
    const t0 = process.hrtime.bigint();
    const instance = new WebAssembly.Instance(image.module, imports);
    const memory = instance.exports.memory as WebAssembly.Memory;
    const t1 = process.hrtime.bigint();
    const needWasmPages = sizeBytes / 65536 - memory.buffer.byteLength / 65536;
    if (needWasmPages > 0) memory.grow(needWasmPages);
    const t2 = process.hrtime.bigint();
    const u8 = new Uint8Array(memory.buffer);
    for (let p = 0; p < pageCount; p++) u8.set(pages[p], p * TRACK_PAGE_BYTES);
    const t3 = process.hrtime.bigint();
    if (u8[TRACK_PAGE_BYTES * 4097] !== pages[4097][0]) throw new Error('restore check failed');
    times.push({ totalMs: Number(t3 - t0) / 1e6, instantiateMs: Number(t1 - t0) / 1e6, growMs: Number(t2 - t1) / 1e6, copyMs: Number(t3 - t2) / 1e6 });
  }
  times.sort((a, b) => a.totalMs - b.totalMs);
  return { ...times[Math.floor(times.length / 2)], pages: pageCount };
}

// ------------------------------------------------------------------ 4. yield points

/** Run compute.wasm once on `image` (the same compiled module every time, so V8's tier-up carries over). */
async function timeCompute(image: PreparedImage): Promise<number> {
  const platform = new NodePlatform({ stdout: new PassThrough().resume(), stderr: new PassThrough().resume(), stdin: null });
  const os = await LibOs.create(platform, { args: ['compute.wasm'], env: [`ROUNDS=${COMPUTE_ROUNDS}`], listeners: [], dirs: [] });
  const lvm = Lvm.create(image, os, platform);
  const t0 = process.hrtime.bigint();
  const exit = await lvm.run();
  const ms = msSince(t0);
  if (exit.kind !== 'exit' || exit.code !== 0) throw new Error(`compute failed: ${JSON.stringify(exit)}`);
  return ms;
}

async function computeCosts(): Promise<Map<string, number>> {
  const variants: Array<[string, { dirtyTracking?: 'instrument'; yieldPoints?: boolean }]> = [
    ['plain', {}], ['yield points', { yieldPoints: true }], ['store instrumentation', { dirtyTracking: 'instrument' }],
    ['both', { dirtyTracking: 'instrument', yieldPoints: true }],
  ];
  const bytes = new Uint8Array(readFileSync(join(root, 'guests', 'test', 'compute.wasm')));
  const images = new Map<string, PreparedImage>();
  for (const [name, o] of variants) images.set(name, await prepareImage(bytes, o));
  const times = new Map<string, number[]>(variants.map(([n]) => [n, []]));
  for (let rep = -2; rep < (quick ? 1 : COMPUTE_REPS); rep++) { // two warm-up rounds: V8 tiers hot functions up
    for (const [name] of rotate(variants, rep)) {
      const ms = await timeCompute(images.get(name)!);
      if (rep >= 0) times.get(name)!.push(ms);
    }
  }
  return new Map([...times].map(([n, xs]) => [n, median(xs)]));
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  const uname = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
  say(`# bench:checkpoint  ${new Date().toISOString()}`);
  const flags = [values.out !== undefined ? `--out ${values.out}` : '', quick ? '--quick' : '', values.sections !== undefined ? `--sections ${values.sections}` : ''].filter((f) => f !== '');
  say(`# command: npm run bench:checkpoint${flags.length > 0 ? ` -- ${flags.join(' ')}` : ''}`);
  say(`# machine: ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), node ${process.version}, Linux ${uname}`);
  say(`# uffd tracker: ${uffd.available ? 'available' : 'NOT available'} (${uffd.reason})`);
  say(`# load average at start: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (other processes share these cores: expect noise)`);
  say('');

  let pauseFailures = 0;
  if (sections.has(1)) {
  say(`## 1. Guest pause per checkpoint = tracker collect + copy of the dirty pages (median of ${quick ? 3 : [...PAUSE_REPS.values()].join('/')} runs)`);
  say('#  dirty pages: random 4 KiB pages, one byte each written by a wasm store just before the checkpoint.');
  say('#  memcpy = copying exactly such dirty pages, 4 KiB memcpy each, no tracker (the target baseline);');
  say('#  contig = one memcpy of the same number of bytes from a contiguous region (reference: what scattering costs).');
  say(`#  target: pause <= ${TARGET_PAUSE_OVER_MEMCPY}x memcpy + ${TARGET_PAUSE_SLACK_MS} ms (also shown against contig); 1% of 64 MiB < ${TARGET_1PCT_64MIB_MS} ms`);
  const rows = await pauses();
  say(`${'memory'.padEnd(7)} ${'dirty'.padStart(5)} ${'pages'.padStart(7)} ${'memcpy'.padStart(8)} ${'contig'.padStart(8)}  ${'tracker'.padEnd(10)} ${'collect'.padStart(8)} ${'copy'.padStart(8)} ${'pause'.padStart(8)} ${'limit'.padStart(8)}  result (ms)`);
  for (const r of rows) {
    const limit = TARGET_PAUSE_OVER_MEMCPY * r.memcpyMs + TARGET_PAUSE_SLACK_MS;
    const contigLimit = TARGET_PAUSE_OVER_MEMCPY * r.contiguousMs + TARGET_PAUSE_SLACK_MS;
    for (const [kind, m] of r.byKind) {
      const ok = m.totalMs <= limit;
      const vsContig = ` (vs contig: ${verdict(m.totalMs <= contigLimit)})`;
      const extra = r.sizeBytes === 64 * MIB && r.fraction === 0.01 ? `; 1% of 64 MiB < ${TARGET_1PCT_64MIB_MS} ms: ${verdict(m.totalMs < TARGET_1PCT_64MIB_MS)}` : '';
      if (!ok && kind !== 'shadow') pauseFailures++;
      say(`${(r.sizeBytes / MIB >= 1024 ? `${r.sizeBytes / MIB / 1024} GiB` : `${r.sizeBytes / MIB} MiB`).padEnd(7)} ${`${r.fraction * 100}%`.padStart(5)} ${String(r.pages).padStart(7)} ${fmt(r.memcpyMs).padStart(8)} ${fmt(r.contiguousMs).padStart(8)}  ` +
        `${kind.padEnd(10)} ${fmt(m.collectMs).padStart(8)} ${fmt(m.copyMs).padStart(8)} ${fmt(m.totalMs).padStart(8)} ${fmt(limit).padStart(8)}  ${verdict(ok)}${vsContig}${kind === 'shadow' ? ' [verification tracker]' : ''}${extra}` +
        (m.reported > r.pages ? `  [reported ${m.reported}]` : ''));
    }
  }
  say('');
  }

  if (sections.has(2)) {
  say(`## 2. Guest slowdown with each tracker, checkpointing (collect + copy) every ${CHECKPOINT_INTERVAL_MS} ms; median of ${quick ? 1 : SLOWDOWN_REPS} interleaved runs (order rotated)`);
  say('#  none = the same guest, plain image, no tracker and no checkpoints; slowdown = none rate / tracker rate');
  say(`#  target: KV service slowdown <= ${TARGET_KV_SLOWDOWN}x for the tracker auto-selection picks; load over loopback${hasCommand('redis-benchmark') ? ' (redis-benchmark)' : ''}`);
  const slow = await slowdown();
  for (const s of slow) {
    say(s.label);
    const base = s.byConfig.get('none')!.rate;
    for (const [c, v] of s.byConfig) {
      const ratio = base / v.rate;
      const target = s.label.startsWith('kv') && c !== 'none' ? `  ${verdict(ratio <= TARGET_KV_SLOWDOWN)}${c === 'shadow' ? ' (verification tracker)' : ''}` : '';
      say(`  ${c.padEnd(10)} ${v.rate.toFixed(0).padStart(10)} ${s.unit}  slowdown ${ratio.toFixed(2)}x  (${v.checkpoints} checkpoints)${target}`);
    }
  }
  say('');
  }

  if (sections.has(3)) {
  say(`## 3. Restore of a 1 GiB image (median of ${quick ? 1 : RESTORE_REPS})`);
  say(`# the operator's path: \`waterbear run memstress.wasm --checkpoint-dir DIR\` with a ${RESTORE_BUFFER_MIB} MiB buffer, every page written (TOUCH), kill -9 once`);
  say('# the store holds them all, then `waterbear restore DIR --no-checkpoint` in a fresh process: the time it reports (store read, page');
  say('# checksums, cached image, library OS and listener, memory written); "process" = spawn -> listening. Each restore is checked by');
  say('# a TOUCH of every page (the guest verifies what it last wrote there). Populate: fresh memory faulted in on every core first.');
  const cli = await measureCliRestore(root, RESTORE_BUFFER_MIB, quick ? 1 : RESTORE_REPS, [['populate', {}], ['one thread', { WATERBEAR_POPULATE: 'off' }]]);
  say(`# image: ${cli.memoryBytes} bytes of memory, ${cli.pages} pages stored, store ${(cli.storeBytes / MIB).toFixed(0)} MiB; setup (run, touch, checkpoint) ${(cli.setupMs / 1000).toFixed(1)} s; population: ${populateImplementation.reason}`);
  const floor = await restore1GiB();
  for (const [mode, runs] of cli.byMode) {
    const ms = median(runs.map((r) => r.restoreMs));
    const target = mode === 'populate' ? `  target < ${TARGET_RESTORE_1GIB_MS} ms: ${verdict(ms < TARGET_RESTORE_1GIB_MS)}` : '  (reference: what the population buys)';
    say(`waterbear restore, ${mode.padEnd(10)} ${fmt(ms).padStart(8)} ms  (each: ${runs.map((r) => fmt(r.restoreMs)).join(', ')}; process ${fmt(median(runs.map((r) => r.processMs)))} ms; ${(ms / floor.totalMs).toFixed(2)}x the copy below)${target}`);
  }
  say(`copy floor (same run, no store): instantiate, grow to 1 GiB, write 262,144 pages on one thread: ${fmt(floor.totalMs)} ms (instantiate ${fmt(floor.instantiateMs)}, grow ${fmt(floor.growMs)}, copy pages ${fmt(floor.copyMs)})`);
  say('');
  }

  if (sections.has(4)) {
  say(`## 4. CPU-bound guest (compute.wasm, ROUNDS=${COMPUTE_ROUNDS}, no system calls inside a round): cost of yield points and of store instrumentation, median of ${quick ? 1 : COMPUTE_REPS}`);
  const cc = await computeCosts();
  const plain = cc.get('plain')!;
  for (const [name, ms] of cc) say(`  ${name.padEnd(22)} ${fmt(ms).padStart(8)} ms  ${(ms / plain).toFixed(2)}x`);
  say('');
  }
  const kinds = KINDS.filter((k) => k !== 'shadow');
  say(`# summary: pause targets missed by ${kinds.join('/')}: ${pauseFailures}; total run ${(msSince(started) / 1000).toFixed(0)} s`);
  if (values.out !== undefined) writeFileSync(values.out, lines.join('\n') + '\n');
}

await main();
process.exit(0);
