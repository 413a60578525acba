/**
 * How long does a backup's event loop stop while it stores a large full image? Compares, on one
 * 256 MiB image (65536 pages) in the LMDB checkpoint store:
 *   - one-shot: `commitBatchAsync` of the whole full checkpoint (into an empty store, and
 *     replacing an image already stored: what a re-protected backup does today);
 *   - staged: `beginStagingAsync`, then `stagePagesAsync` in slices of 1 MiB (256 pages), then
 *     the completing full checkpoint (`stagedFrom`) with a few hundred pages, which also empties
 *     the previously active page database.
 * For each: wall time, and the largest gap seen by a 10 ms setInterval (the event loop's stall).
 * Pages are sealed (CRC-32C) before timing: a sender ships them sealed (staging checks each
 * page's CRC-32C again, inside its timing).
 *
 *   node --import tsx bench/checkpoint-staging.ts [--pages 65536] [--slice 256] [--final 300]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sealPages, type CheckpointData, type CheckpointPage } from '../checkpoint/checkpoint-data.js';
import { CheckpointStore } from '../checkpoint/store/checkpoint-store.js';
import { benchArgs } from './lib/args.js';
import { median, prng, samplePages } from './lib/stats.js';

const PAGE_BYTES = 4096;
const TICK_MS = 10;

const args = benchArgs('node --import tsx bench/checkpoint-staging.ts', 'How long a backup\'s event loop stops while it stores a large full image: in one piece against staged in slices.', {
  pages: { type: 'string', help: 'pages in the image (default 65536)' },
  slice: { type: 'string', help: 'pages per slice (default 256)' },
  final: { type: 'string', help: 'pages in the final checkpoint (default 300)' },
});
const values = { pages: args.pages ?? '65536', slice: args.slice ?? '256', final: args.final ?? '300' };
const PAGES = Number(values.pages);
const SLICE = Number(values.slice);
const FINAL = Number(values.final);

/** A memory image whose every page differs, and its pages, sealed. */
function image(seed: number): { memory: Uint8Array; pages: CheckpointPage[] } {
  const memory = new Uint8Array(PAGES * PAGE_BYTES);
  const words = new Uint32Array(memory.buffer);
  const rnd = prng(seed);
  for (let i = 0; i < words.length; i += 16) words[i] = (rnd() * 2 ** 32) >>> 0;
  const pages = Array.from({ length: PAGES }, (_, index) => ({ index, data: memory.subarray(index * PAGE_BYTES, (index + 1) * PAGE_BYTES) }));
  return { memory, pages };
}

function checkpoint(epoch: number, pages: CheckpointPage[], stagedFrom?: string): CheckpointData {
  const cp: CheckpointData = {
    epoch, full: true, imageSha256: 'ab'.repeat(32), memoryBytes: PAGES * PAGE_BYTES, pages, globals: [],
    pending: { deadlineNs: null, blockedAtNs: 0n, forced: false },
    libos: { args: [], env: [], fds: [], vfs: { full: true, bytes: new Uint8Array(64) }, vfsMaxBytes: 1 << 20, clock: { monotonicNs: '0' } },
    extensions: null, stats: { pauseUs: 0, capturedAtMs: Date.now(), trackerPages: pages.length, tracker: 'full' },
    ...(stagedFrom !== undefined ? { stagedFrom } : {}),
  };
  sealPages(cp);
  return cp;
}

/** Run `work`, measuring its wall time and the largest event-loop gap meanwhile (ms). */
async function timed(work: () => Promise<void>): Promise<{ ms: number; maxGapMs: number }> {
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => { const now = performance.now(); maxGap = Math.max(maxGap, now - last); last = now; }, TICK_MS);
  const start = performance.now();
  await work();
  const ms = performance.now() - start;
  const end = performance.now();
  maxGap = Math.max(maxGap, end - last);
  clearInterval(timer);
  return { ms, maxGapMs: maxGap };
}

const f = (x: number): string => x.toFixed(0).padStart(7);

const dir = mkdtempSync(join(tmpdir(), 'wb-bench-staging-'));
try {
  const store = CheckpointStore.open(dir);
  const a = image(1);
  const b = image(2);
  const rows: Array<[string, { ms: number; maxGapMs: number }]> = [];

  // Baselines: one shot into an empty store, then replacing that image.
  const [cp1, cp2] = [checkpoint(1, a.pages), checkpoint(2, b.pages)];
  rows.push(['one-shot full, empty store', await timed(() => store.commitBatchAsync([cp1]))]);
  rows.push(['one-shot full, replacing an image', await timed(() => store.commitBatchAsync([cp2]))]);

  // Staged: image `a` again, in slices; the final checkpoint overrides FINAL random pages.
  const sliceMs: number[] = [];
  rows.push(['staging: begin + all slices', await timed(async () => {
    await store.beginStagingAsync('bench-3');
    for (let i = 0; i < PAGES; i += SLICE) {
      const t0 = performance.now();
      await store.stagePagesAsync('bench-3', a.pages.slice(i, i + SLICE));
      sliceMs.push(performance.now() - t0);
    }
  })]);
  const finalPages = [...samplePages(PAGES, FINAL, prng(3))].map((i) => ({ index: i, data: b.pages[i].data }));
  const cp3 = checkpoint(3, finalPages, 'bench-3');
  rows.push([`completing (${FINAL} pages, empties ${PAGES})`, await timed(() => store.commitBatchAsync([cp3]))]);
  const loaded = store.loadImage()!;
  const want = Uint8Array.from(a.memory);
  for (const p of finalPages) want.set(p.data, p.index * PAGE_BYTES);
  if (loaded.epoch !== 3 || Buffer.compare(loaded.lvm.memory, want) !== 0) throw new Error('the staged image does not load back');

  // The completion's cost without emptying a large image: stage again over a tiny active chain.
  const small = CheckpointStore.open(join(dir, 'small'));
  await small.commitBatchAsync([checkpoint(1, a.pages.slice(0, 1))]);
  await small.beginStagingAsync('bench-2');
  for (let i = 0; i < PAGES; i += SLICE) await small.stagePagesAsync('bench-2', a.pages.slice(i, i + SLICE));
  const smallCp2 = checkpoint(2, finalPages, 'bench-2');
  rows.push([`completing (${FINAL} pages, empties 1)`, await timed(() => small.commitBatchAsync([smallCp2]))]);
  small.close();
  store.close();

  const base = rows[1][1];
  console.log(`${PAGES} pages (${(PAGES * PAGE_BYTES / 2 ** 20).toFixed(0)} MiB), slices of ${SLICE} pages; event-loop gap = largest interval between ${TICK_MS} ms ticks`);
  console.log(`${'step'.padEnd(40)} ${'ms'.padStart(7)} ${'max gap'.padStart(7)}  gap vs one-shot replacing`);
  for (const [name, r] of rows) console.log(`${name.padEnd(40)} ${f(r.ms)} ${f(r.maxGapMs)}  ${(r.maxGapMs / base.maxGapMs).toFixed(3)}x`);
  console.log(`stagePagesAsync per ${SLICE}-page slice: median ${median(sliceMs).toFixed(1)} ms, max ${Math.max(...sliceMs).toFixed(1)} ms (${sliceMs.length} slices)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
