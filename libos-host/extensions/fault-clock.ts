import type { ClockRule } from './fault-rule.js';

/** Saved state of one clock rule: calls counted and, once active, the time elapsed since activation. */
export interface ClockFaultState { calls: number; elapsedNs: string | null }

/**
 * One clock rule as a function of its input time x (the real clock, or the previous rule's
 * output): inactive for the first `after` calls, then f(x) = x + jump + (x - a)·(drift - 1),
 * where a is x at activation. f is increasing, so deadlines map back exactly with `invert`.
 */
export class ClockFault {
  private calls = 0;
  private activeAt: bigint | null = null;

  constructor(readonly rule: ClockRule) {}

  /** Map x; with `count`, this is a `now` call that counts toward `after`. */
  apply(x: bigint, count: boolean): bigint {
    if (count) {
      this.calls++;
      if (this.activeAt === null && this.calls > this.rule.after) this.activeAt = x;
    }
    if (this.activeAt === null) return x;
    return x + BigInt(this.rule.jumpNs) + BigInt(Math.round(Number(x - this.activeAt) * (this.rule.drift - 1)));
  }

  /** The x for which apply(x) = y (ignoring clamps). */
  invert(y: bigint): bigint {
    if (this.activeAt === null) return y;
    return this.activeAt + BigInt(Math.round(Number(y - BigInt(this.rule.jumpNs) - this.activeAt) / this.rule.drift));
  }

  /** Save relative to the current input time `x`, so a restore in another process continues the fault. */
  save(x: bigint): ClockFaultState {
    return { calls: this.calls, elapsedNs: this.activeAt === null ? null : (x - this.activeAt).toString() };
  }

  /** Restore with `x` the input time now (in this process). */
  restore(s: ClockFaultState, x: bigint): void {
    this.calls = s.calls;
    this.activeAt = s.elapsedNs === null ? null : x - BigInt(s.elapsedNs);
  }
}
