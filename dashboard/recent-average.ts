/**
 * The average of a cumulative (sum, count) pair over a recent window, from snapshots taken at
 * each poll: (sum now − sum then) / (count now − count then), "then" being the oldest snapshot
 * inside the window. Counters belong to one source (a primary's tenure): a new source, or a
 * counter that went backwards (a restart), starts over.
 */
export class RecentAverage {
  private readonly snaps: Array<{ at: number; sum: number; count: number }> = [];
  private source: string | null = null;

  constructor(readonly windowMs: number) {}

  /** Record the counters at `at` (ms) and return the window's average, or null if nothing was counted in it. */
  update(at: number, source: string, sum: number, count: number): number | null {
    const last = this.snaps[this.snaps.length - 1];
    if (source !== this.source || (last !== undefined && (count < last.count || sum < last.sum || at < last.at))) {
      this.snaps.length = 0;
      this.source = source;
    }
    this.snaps.push({ at, sum, count });
    // Keep one snapshot at or before the window's start, so the window is covered whole.
    while (this.snaps.length > 2 && this.snaps[1].at <= at - this.windowMs) this.snaps.shift();
    const from = this.snaps[0];
    return count > from.count ? (sum - from.sum) / (count - from.count) : null;
  }

  /** No source (no primary answering). */
  reset(): void {
    this.snaps.length = 0;
    this.source = null;
  }
}
