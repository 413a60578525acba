/**
 * Sub-page deltas: a dirty 4 KiB page as the byte runs that differ from an earlier version of
 * it. A SET to the KV guest dirties a handful of pages but changes a few dozen bytes in each;
 * shipping whole pages made checkpoints ~16 KB per request (docs/replication.md, sessions 9–18).
 *
 * A delta is a sequence of runs, each `start` (u16 LE), `length` (u16 LE, >= 1), then `length`
 * bytes; runs ascend without overlapping and end inside the page. Applying one to the
 * wrong base cannot go unnoticed: the page's CRC-32C is of the whole result and is checked after.
 */
import { CHECKPOINT_PAGE_BYTES } from '../checkpoint-data.js';
import { nativeChangedRuns } from './crc32c.js';

/** Bytes of a run's header (start and length). */
export const DELTA_RUN_HEADER_BYTES = 4;
/**
 * Unchanged stretches shorter than this between two changed words are sent rather than costing
 * another run header (a header is 4 bytes; comparing goes by 4-byte words).
 */
export const DELTA_MERGE_GAP_BYTES = 8;
/** A delta larger than this is not worth it: the page goes whole (half a page). */
export const DELTA_MAX_BYTES = CHECKPOINT_PAGE_BYTES / 2;

const PAGE_WORDS = CHECKPOINT_PAGE_BYTES / 4;
/**
 * Blocks compared with one native memcmp (Buffer#compare with offsets, no views allocated)
 * before any word is looked at: a typical dirty page differs in a few blocks.
 */
const COMPARE_BLOCK_BYTES = 512;
const compareRanges = Buffer.prototype.compare;
/** Buffer#copy with offsets: no subarray view allocated per run. */
const copyRange = Buffer.prototype.copy;
/** Run boundaries (start, end pairs) found for one page, reused. */
const runPairs = new Uint16Array(2 * PAGE_WORDS);

/** How `diffPage` compares: the native addon's changedRuns (~5x faster), unless absent or WATERBEAR_PAGE_DELTA=js. */
export const pageDeltaImplementation: 'native' | 'js' = nativeChangedRuns !== null && process.env.WATERBEAR_PAGE_DELTA !== 'js' ? 'native' : 'js';
const changedRuns = pageDeltaImplementation === 'native' ? nativeChangedRuns! : changedRunsJs;

/**
 * The runs [start, end) where `next` differs from `base` (one page each), as start/end pairs in
 * `out`, runs closer than `mergeGap` bytes merged; their number, or -1 once the delta would
 * exceed `maxBytes`. By 4-byte words where both pages are aligned (checkpoint pages are: views at
 * page offsets), else by bytes. native/uffd/src/crc32c.c has the same in C (by words always).
 */
export function changedRunsJs(base: Uint8Array, next: Uint8Array, out: Uint16Array, mergeGap: number, maxBytes: number): number {
  const a = base.byteOffset % 4 === 0 ? new Int32Array(base.buffer, base.byteOffset, PAGE_WORDS) : null;
  const b = next.byteOffset % 4 === 0 ? new Int32Array(next.buffer, next.byteOffset, PAGE_WORDS) : null;
  const unit = a !== null && b !== null ? 4 : 1;
  let runs = 0;
  let size = 0;
  let runStart = 0;
  let runEnd = -1; // the open run is [runStart, runEnd); none while -1
  for (let block = 0; block < CHECKPOINT_PAGE_BYTES; block += COMPARE_BLOCK_BYTES) {
    if (compareRanges.call(next, base, block, block + COMPARE_BLOCK_BYTES, block, block + COMPARE_BLOCK_BYTES) === 0) continue;
    for (let at = block; at < block + COMPARE_BLOCK_BYTES; at += unit) {
      if (unit === 4 ? a![at >>> 2] === b![at >>> 2] : base[at] === next[at]) continue;
      if (runEnd >= 0 && at - runEnd < mergeGap) { runEnd = at + unit; continue; }
      if (runEnd >= 0) {
        size += DELTA_RUN_HEADER_BYTES + runEnd - runStart;
        if (size > maxBytes) return -1;
        out[2 * runs] = runStart;
        out[2 * runs++ + 1] = runEnd;
      }
      runStart = at;
      runEnd = at + unit;
    }
  }
  if (runEnd >= 0) {
    size += DELTA_RUN_HEADER_BYTES + runEnd - runStart;
    if (size > maxBytes) return -1;
    out[2 * runs] = runStart;
    out[2 * runs++ + 1] = runEnd;
  }
  return runs;
}

/**
 * The delta that turns `base` into `next` (both one page), or null when it would be larger than
 * `maxBytes` (the page should go whole). Identical pages give an empty delta.
 */
export function diffPage(base: Uint8Array, next: Uint8Array, maxBytes = DELTA_MAX_BYTES): Uint8Array | null {
  if (base.length !== CHECKPOINT_PAGE_BYTES || next.length !== CHECKPOINT_PAGE_BYTES) throw new RangeError('diffPage: pages must be 4096 bytes');
  const runs = changedRuns(base, next, runPairs, DELTA_MERGE_GAP_BYTES, maxBytes);
  if (runs < 0) return null;
  let size = 0;
  for (let r = 0; r < runs; r++) size += DELTA_RUN_HEADER_BYTES + runPairs[2 * r + 1] - runPairs[2 * r];
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let r = 0; r < runs; r++) {
    const start = runPairs[2 * r];
    const length = runPairs[2 * r + 1] - start;
    out[at] = start & 0xff;
    out[at + 1] = start >>> 8;
    out[at + 2] = length & 0xff;
    out[at + 3] = length >>> 8;
    copyRange.call(next, out, at + DELTA_RUN_HEADER_BYTES, start, start + length);
    at += DELTA_RUN_HEADER_BYTES + length;
  }
  return out;
}

/**
 * `base` (one page) with `delta` applied, as a new page. Throws a RangeError naming what is wrong
 * with a malformed delta (a run past the page end, out of order, cut short); the caller turns it
 * into its own refusal.
 */
export function applyPageDelta(base: Uint8Array, delta: Uint8Array): Uint8Array {
  if (base.length !== CHECKPOINT_PAGE_BYTES) throw new RangeError(`the base page has ${base.length} bytes`);
  const out = Buffer.allocUnsafe(CHECKPOINT_PAGE_BYTES);
  out.set(base);
  let at = 0;
  let last = 0;
  while (at < delta.length) {
    if (at + DELTA_RUN_HEADER_BYTES > delta.length) throw new RangeError(`the delta ends inside a run header at byte ${at}`);
    const start = delta[at] | (delta[at + 1] << 8);
    const length = delta[at + 2] | (delta[at + 3] << 8);
    at += DELTA_RUN_HEADER_BYTES;
    if (length === 0 || start < last || start + length > CHECKPOINT_PAGE_BYTES) throw new RangeError(`a run [${start}, ${start + length}) is empty, out of order or past the page`);
    if (at + length > delta.length) throw new RangeError(`the delta ends inside the run at ${start}`);
    out.set(delta.subarray(at, at + length), start);
    at += length;
    last = start + length;
  }
  return out;
}
