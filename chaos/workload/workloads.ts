import { VALUE_STRIDE } from '../checker/kv-checker.js';
import type { Prng } from '../random/prng.js';
import type { OpRequest } from './workload-client.js';

export type WorkloadName = 'kv' | 'counter';
export const WORKLOAD_NAMES: readonly WorkloadName[] = ['kv', 'counter'];

/** What a workload's clients do; the checkers live in chaos/checker. */
export interface Workload {
  name: WorkloadName;
  /** The keys it touches (each gets a final read). */
  keys: string[];
  /** The next operation of `process`, from its own generator. */
  next(g: Prng, process: number): OpRequest;
}

/** Share of each operation in the KV workload. */
export const KV_READ_SHARE = 0.45;
export const KV_WRITE_SHARE = 0.4; // the rest are INCRs

/** The counter workload's key. */
export const COUNTER_KEY = 'counter';
export const COUNTER_READ_SHARE = 0.2;

/**
 * KV: SET of unique values, GET and INCR on a few keys. Values are unique multiples of
 * VALUE_STRIDE, so an INCR'd value still names the write it came from, and a lost or
 * resurrected write is visible.
 */
export function kvWorkload(keyCount: number): Workload {
  const keys = Array.from({ length: keyCount }, (_, i) => `k${i}`);
  const seq = new Map<number, number>();
  return {
    name: 'kv',
    keys,
    next(g, process) {
      const key = g.pick(keys);
      const r = g.float();
      if (r < KV_READ_SHARE) return { f: 'read', key };
      if (r < KV_READ_SHARE + KV_WRITE_SHARE) {
        const n = (seq.get(process) ?? 0) + 1;
        seq.set(process, n);
        // Unique per (process, n): process p writes (p+1)·10^9 + n·1000.
        return { f: 'write', key, value: String((process + 1) * 1_000_000_000 + n * VALUE_STRIDE) };
      }
      return { f: 'incr', key };
    },
  };
}

/** Counter: INCR (and some GETs) on one key; the invariant is checked by checkCounter. */
export function counterWorkload(): Workload {
  return {
    name: 'counter',
    keys: [COUNTER_KEY],
    next(g) { return g.chance(COUNTER_READ_SHARE) ? { f: 'read', key: COUNTER_KEY } : { f: 'incr', key: COUNTER_KEY }; },
  };
}
