/** Small statistics for benchmarks. */

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of an empty list');
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The `p` quantile (0..1) of an ascending list, by the nearest rank below; NaN when empty. */
export function quantile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** The `p`th percentile (0..100) of an ascending non-empty list by the nearest-rank method (p50 of 4 values is the 2nd). */
export function nearestRank(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Milliseconds elapsed since `startNs` (process.hrtime.bigint()). */
export function msSince(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e6;
}

/** mulberry32: a seeded PRNG in [0, 1). */
export { mulberry32 as prng } from '../../libos-host/extensions/prng.js';

/** `k` distinct integers from [0, n), ascending, chosen with `rnd`. */
export function samplePages(n: number, k: number, rnd: () => number): Uint32Array {
  const out = new Uint32Array(k);
  if (k === 0) return out;
  // Selection sampling (Knuth's algorithm S): one pass, ascending, exact count.
  let chosen = 0;
  for (let i = 0; i < n && chosen < k; i++) {
    if ((n - i) * rnd() < k - chosen) out[chosen++] = i;
  }
  return out;
}
