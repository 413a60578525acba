import type { FailRule } from './fault-rule.js';
import { Mulberry32 } from './prng.js';

/** Saved state of one fail rule. */
export interface FaultTriggerState { calls: number; failed: number; prng: number }

/**
 * Decides, call by call, whether a fail rule fires: never for the first `after` calls, then with
 * probability `p` (a seeded PRNG, drawn only for eligible calls), at most `count` times. Pure and
 * deterministic: the same seed and the same sequence of counted calls give the same failures.
 */
export class FaultTrigger {
  private calls = 0;
  private failed = 0;
  private readonly prng: Mulberry32;

  constructor(readonly rule: FailRule, readonly seed: number) {
    this.prng = new Mulberry32(seed);
  }

  /** Count one call; true when it must fail. */
  fire(): boolean {
    this.calls++;
    if (this.calls <= this.rule.after) return false;
    if (this.rule.count !== null && this.failed >= this.rule.count) return false;
    if (this.rule.p < 1 && this.prng.next() >= this.rule.p) return false;
    this.failed++;
    return true;
  }

  save(): FaultTriggerState {
    return { calls: this.calls, failed: this.failed, prng: this.prng.state };
  }

  restore(s: FaultTriggerState): void {
    this.calls = s.calls;
    this.failed = s.failed;
    this.prng.state = s.prng;
  }
}
