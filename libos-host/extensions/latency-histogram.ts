/** Upper bounds (inclusive, µs) of the latency buckets: a fixed 1-2-5 log scale from 1 µs to 1 s. */
export const LATENCY_BUCKET_BOUNDS_US: readonly number[] = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000,
];

/** A plain, JSON-able histogram: `counts[i]` counts values ≤ `boundsUs[i]` (and > the previous bound); the last count is everything above 1 s. */
export interface HistogramSnapshot {
  boundsUs: number[];
  counts: number[];
  sumUs: number;
}

/** Index of the bucket for a value in µs. */
export function bucketIndex(us: number): number {
  for (let i = 0; i < LATENCY_BUCKET_BOUNDS_US.length; i++) if (us <= LATENCY_BUCKET_BOUNDS_US[i]) return i;
  return LATENCY_BUCKET_BOUNDS_US.length;
}

/** An empty histogram. */
export function emptyHistogram(): HistogramSnapshot {
  return { boundsUs: [...LATENCY_BUCKET_BOUNDS_US], counts: new Array<number>(LATENCY_BUCKET_BOUNDS_US.length + 1).fill(0), sumUs: 0 };
}

/** Record one value (µs). */
export function recordLatency(h: HistogramSnapshot, us: number): void {
  h.counts[bucketIndex(us)]++;
  h.sumUs += us;
}
