import type { Extension } from '../abi/host-abi.js';
import { WaterbearError } from '../errors.js';

/** Saved state of a whole stack, bottom-up: what the checkpointer stores with the LVM. JSON-able. */
export interface SavedStack {
  v: 1;
  extensions: Array<{ name: string; state: unknown }>;
}

/** Save every extension's state, in stack order. */
export function saveStackState(extensions: readonly Extension[]): SavedStack {
  return { v: 1, extensions: extensions.map((e) => ({ name: e.name, state: e.saveState() })) };
}

/**
 * Restore a stack saved by `saveStackState` into a freshly composed stack with the same
 * extensions in the same order. Throws WB_CHECKPOINT_VERSION for another version and
 * WB_CONFIG_INVALID when the stacks differ (restore with the same extension flags).
 */
export function restoreStackState(extensions: readonly Extension[], saved: SavedStack): void {
  if (saved?.v !== 1 || !Array.isArray(saved.extensions)) {
    throw new WaterbearError('WB_CHECKPOINT_VERSION', `extension stack state has version ${String(saved?.v)}, this build reads version 1`);
  }
  const was = saved.extensions.map((e) => e.name);
  const now = extensions.map((e) => e.name);
  if (was.join(',') !== now.join(',')) {
    throw new WaterbearError('WB_CONFIG_INVALID',
      `the checkpoint was taken with extensions [${was.join(', ')}] but this launch has [${now.join(', ')}]; restore with the same extension flags`);
  }
  extensions.forEach((e, i) => e.restoreState(saved.extensions[i].state));
}
