import { WaterbearError } from '../errors.js';

/**
 * Check that `state` is a saved-state object of `version` for extension `name` and return it.
 * Throws WB_CHECKPOINT_VERSION for another version, WB_CHECKPOINT_CORRUPT for anything else.
 */
export function checkSavedState(state: unknown, name: string, version: number): Record<string, unknown> {
  if (state === null || typeof state !== 'object' || Array.isArray(state)) {
    throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `${name} extension state is not an object; the checkpoint is damaged`);
  }
  const v = (state as { v?: unknown }).v;
  if (v !== version) {
    throw new WaterbearError('WB_CHECKPOINT_VERSION',
      `${name} extension state has version ${String(v)}, this build reads version ${version}; restore with the waterbear version that saved it`);
  }
  return state as Record<string, unknown>;
}

/** Throw WB_CHECKPOINT_CORRUPT unless `ok`. */
export function assertState(ok: boolean, name: string, what: string): asserts ok {
  if (!ok) throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `${name} extension state: ${what}; the checkpoint is damaged`);
}
