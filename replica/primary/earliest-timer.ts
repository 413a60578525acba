/** The timer functions EarliestTimer uses (injectable for tests). */
export interface TimerFns {
  set: (fn: () => void, delayMs: number) => unknown;
  clear: (handle: unknown) => void;
}

const NODE_TIMERS: TimerFns = {
  set: (fn, delayMs) => setTimeout(fn, delayMs),
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * One pending callback, due at the EARLIEST time asked for. The primary asks for a checkpoint at
 * the max interval while the guest holds no output, and at the min interval once it does: the
 * later request must not hide the earlier one (it held replies for up to a max interval).
 */
export class EarliestTimer {
  private handle: unknown = null;
  private atMs = Infinity;

  constructor(private readonly nowMs: () => number, private readonly timers: TimerFns = NODE_TIMERS) {}

  /** Run `fn` at `atMs` (nowMs clock), unless something is already due no later than that. */
  schedule(atMs: number, fn: () => void): void {
    if (this.handle !== null) {
      if (this.atMs <= atMs) return;
      this.timers.clear(this.handle);
    }
    this.atMs = atMs;
    this.handle = this.timers.set(() => {
      this.handle = null;
      this.atMs = Infinity;
      fn();
    }, Math.max(0, atMs - this.nowMs()));
  }

  /** True while a callback is scheduled. */
  get pending(): boolean { return this.handle !== null; }

  cancel(): void {
    if (this.handle !== null) this.timers.clear(this.handle);
    this.handle = null;
    this.atMs = Infinity;
  }
}
