import { ILLEGAL, type Model } from './linearizability.js';

/** One key of the KV guest as a sequential register with INCR: its value, or null when unset. */
export type KvState = string | null;

export type KvInput = { f: 'read' } | { f: 'write'; value: string } | { f: 'incr' };
/** read: the value (null = missing); write: ignored; incr: the new value. */
export type KvOutput = string | number | null;

/** Redis INCR's view of a value: a canonical 64-bit-safe integer, or NaN. */
export function asInteger(v: KvState): number {
  if (v === null) return 0;
  return /^-?(0|[1-9][0-9]{0,15})$/.test(v) ? Number(v) : NaN;
}

/**
 * The sequential specification of one key: SET stores a value, GET returns the stored value (or
 * nil), INCR adds one to an integer value (a missing key counts as 0) and returns the result.
 */
export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => null,
  step(state, input, output) {
    switch (input.f) {
      case 'read':
        if (output === undefined) return state;
        return (output === null ? null : String(output)) === state ? state : ILLEGAL;
      case 'write':
        return input.value;
      case 'incr': {
        const cur = asInteger(state);
        if (Number.isNaN(cur)) return output === undefined ? state : ILLEGAL; // INCR would have errored
        const n = cur + 1;
        if (output !== undefined && Number(output) !== n) return ILLEGAL;
        return String(n);
      }
    }
  },
  hash: (s) => (s === null ? '\u0000nil' : s),
  describe: (s) => (s === null ? 'nil' : JSON.stringify(s)),
};
