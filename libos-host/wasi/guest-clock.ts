import type { HostAbi } from '../abi/host-abi.js';

/** Saved clock state: the guest-visible monotonic time when the LVM was captured. */
export interface GuestClockState { monotonicNs: string }

/**
 * The guest's clocks. Realtime is the host's. Monotonic is the host's plus an offset chosen so
 * that, after a restore in another process or on another machine, it continues from where the
 * captured LVM left it and never goes backwards.
 */
export class GuestClock {
  private offsetNs = 0n;
  private lastMonotonicNs = 0n;

  constructor(private readonly abi: HostAbi) {}

  /** Guest-visible monotonic time (ns). */
  monotonic(): bigint {
    let t = this.abi.now('monotonic') + this.offsetNs;
    if (t < this.lastMonotonicNs) t = this.lastMonotonicNs;
    this.lastMonotonicNs = t;
    return t;
  }

  realtime(): bigint { return this.abi.now('realtime'); }

  /** Convert a guest monotonic deadline to the ABI's monotonic clock (for `wait`). */
  toAbiMonotonic(guestNs: bigint): bigint { return guestNs - this.offsetNs; }

  save(): GuestClockState { return { monotonicNs: this.monotonic().toString() }; }

  restore(state: GuestClockState): void {
    const saved = BigInt(state.monotonicNs);
    this.offsetNs = saved - this.abi.now('monotonic');
    this.lastMonotonicNs = saved;
  }
}
