/** First and longest wait of a replica whose store failed before it asks to join again. */
export const JOIN_BACKOFF_MIN_MS = 1_000;
export const JOIN_BACKOFF_MAX_MS = 8_000;

/**
 * A replica whose checkpoint store fails (a full or broken disk) is dropped by the primary, asks
 * to join again, and is sent its full image again: every JOIN_RETRY_INTERVAL_MS, for as long as
 * the disk stays full, a whole image over the network and a warning on both sides. After a
 * failure it waits before asking: from JOIN_BACKOFF_MIN_MS, doubling per failed attempt up to
 * JOIN_BACKOFF_MAX_MS (so it is back at most that long after space returns); a stored checkpoint
 * resets it. Failures inside one wait (the primary's resends) count once.
 */
export class JoinBackoff {
  private waitMs = 0;
  private notBeforeMs = -Infinity;

  failed(nowMs: number): void {
    if (nowMs < this.notBeforeMs) return;
    this.waitMs = Math.min(JOIN_BACKOFF_MAX_MS, this.waitMs === 0 ? JOIN_BACKOFF_MIN_MS : 2 * this.waitMs);
    this.notBeforeMs = nowMs + this.waitMs;
  }

  stored(): void {
    this.waitMs = 0;
    this.notBeforeMs = -Infinity;
  }

  mayAsk(nowMs: number): boolean {
    return nowMs >= this.notBeforeMs;
  }
}
