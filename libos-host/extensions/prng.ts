/**
 * mulberry32: a tiny deterministic PRNG whose whole state is one uint32, so it can be saved with
 * the LVM and continue the same sequence in another process. Not for cryptography.
 */
export class Mulberry32 {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** The next value in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** The state (a uint32), JSON-able. */
  get state(): number { return this.s; }
  set state(value: number) { this.s = value >>> 0; }
}

/** A Mulberry32 as a plain function: seeded choices in tests, benchmarks and simulations. */
export function mulberry32(seed: number): () => number {
  const g = new Mulberry32(seed);
  return () => g.next();
}
