import { setFlagsFromString } from 'node:v8';

/**
 * V8 flags every waterbear process that runs a guest sets for itself at start (replica, run,
 * restore: the unreplicated LVM the benchmarks compare against gets the same heap sizing).
 * Measured on the replica (docs/replication.md, "Session 8").
 * `--heap-growing-percent=200`: under replication load the primary ran a mark-compact every
 * ~60-100 ms with a ~16 MB heap whose old generation grew ~1.5 MB between them (the unreplicated
 * LVM under the same load: 2 in a run), each pausing the commit path 2-20 ms. Incremental marking
 * was started from V8's task long before the heap limit, apparently because the headroom left
 * under that limit was smaller than the young generation. Letting the old generation grow to 3x
 * its live size before marking: ~25 -> ~4 mark-compacts per run, 16-client SET p99 ~14 -> ~10 ms.
 * The replica's JavaScript heap is small (guest memory and checkpoints are ArrayBuffers outside
 * it), so the cost is tens of MB at most; V8's maximum heap size still bounds it.
 */
export const V8_TUNING_FLAGS: readonly string[] = ['--heap-growing-percent=200'];

/** Apply V8_TUNING_FLAGS unless WATERBEAR_V8_TUNING=0 (to compare, or if a Node upgrade misbehaves). */
export function applyV8Tuning(env: NodeJS.ProcessEnv = process.env): readonly string[] {
  if (env.WATERBEAR_V8_TUNING === '0') return [];
  for (const flag of V8_TUNING_FLAGS) setFlagsFromString(flag);
  return V8_TUNING_FLAGS;
}
