import type { View } from './view.js';

/**
 * A backup's chain record (`chain.json` beside its store): whose checkpoint chain the store holds
 * and the latest view that chain is known to run through. After a restart the chain counts for a
 * takeover only if the first view the replica learns is that view (BackupProtocol), so the record
 * must never name a later view than the store's chain has seen: a stale record only ever stops a
 * takeover. Pure rules, shared by the backup's driver and the replication simulation.
 */
export interface ChainRecord { primary: string; view: number }

/**
 * After the store committed a checkpoint of `from`'s chain that arrived in `view`: the record to
 * write, or null when the one on disk already says as much (never move a chain's view back).
 */
export function chainRecordAfterStore(recorded: ChainRecord | null, from: string, view: number): ChainRecord | null {
  return recorded !== null && recorded.primary === from && view <= recorded.view ? null : { primary: from, view };
}

/**
 * After the coordinator committed `view`, with `chainOf` the chain the backup protocol still
 * holds: the chain runs on into `view` when the same primary keeps it from the recorded view to
 * the very next one (the protocol forgets the chain on any other change), and the store already
 * holds that chain (the record names it, written after a store commit). An idle guest sends no
 * checkpoint in the new view, and without this a joiner's record kept naming the view it joined
 * in: after a whole-cluster restart no replica could take over (NO PRIMARY until an operator came).
 */
export function chainRecordAfterView(recorded: ChainRecord | null, view: View, chainOf: string | null): ChainRecord | null {
  if (recorded === null || chainOf !== view.primary || recorded.primary !== view.primary || view.view !== recorded.view + 1) return null;
  return { primary: view.primary, view: view.view };
}
