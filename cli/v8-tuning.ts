import { setFlagsFromString } from 'node:v8';

/**
 * V8 flags a replica sets for itself at start (docs/replication.md, "Session 8").
 * `--no-incremental-marking-task`: under replication load the primary's V8 started incremental
 * marking from a scheduled task every ~60-100 ms although its old generation barely grew
 * (~1.5 MB between collections; the unreplicated LVM under the same load: 2 in a run), and each
 * of those mark-compacts paused the commit path for 2-20 ms. Without the task, marking starts
 * when allocation reaches V8's limit: about half as many mark-compacts, p99 of a replicated SET
 * ~21 -> ~15 ms. Only scheduling changes; the heap limits and what is collected do not.
 */
export const REPLICA_V8_FLAGS: readonly string[] = ['--no-incremental-marking-task'];

/** Apply REPLICA_V8_FLAGS unless WATERBEAR_V8_TUNING=0 (to compare, or if a Node upgrade misbehaves). */
export function applyReplicaV8Flags(env: NodeJS.ProcessEnv = process.env): readonly string[] {
  if (env.WATERBEAR_V8_TUNING === '0') return [];
  for (const flag of REPLICA_V8_FLAGS) setFlagsFromString(flag);
  return REPLICA_V8_FLAGS;
}
