import { WaterbearError } from '../../libos-host/errors.js';

/** Largest seed `waterbear chaos --seed` accepts (seeds are unsigned 32-bit integers). */
export const MAX_SEED = 0xffff_ffff;

/** splitmix32: one step, used to spread a seed (and a label's hash) over the generator's state. */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) >>> 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a of a label: forks of one generator with different labels are independent streams. */
function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * A seeded generator (xoshiro128**) for everything the chaos harness chooses: the fault schedule,
 * each client's operations, the fault proxies' coin flips. The same seed gives the same sequence
 * on every machine. `fork(label)` derives an independent stream, so that (for example) the
 * schedule does not change when a workload draws more or fewer numbers. Not for cryptography.
 */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
      throw new WaterbearError('WB_CONFIG_INVALID', `seed must be an integer between 0 and ${MAX_SEED}: got ${seed}`);
    }
    let s = seed >>> 0;
    this.a = s = splitmix32(s);
    this.b = s = splitmix32(s);
    this.c = s = splitmix32(s);
    this.d = splitmix32(s);
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  /** The next uint32. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.b << 9) >>> 0;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c = (this.c ^ t) >>> 0;
    this.d = rotl(this.d, 11);
    this.a >>>= 0; this.b >>>= 0; this.c >>>= 0;
    return result;
  }

  /** Uniform in [0, 1). */
  float(): number { return this.nextUint32() / 4294967296; }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    if (hi < lo) throw new RangeError(`int(${lo}, ${hi}): empty range`);
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean { return this.float() < p; }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[Math.floor(this.float() * items.length)];
  }

  /** A shuffled copy (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.float() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** An independent generator for `label`, determined by this generator's seed only. */
  fork(label: string): Prng {
    return new Prng(splitmix32((this.seed ^ hashLabel(label)) >>> 0));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A fresh seed for a run without --seed (printed, so the run can be replayed). */
export function randomSeed(): number {
  return Math.floor(Math.random() * MAX_SEED) >>> 0;
}
