import type { Handle, HostAbi, StreamKind } from '../abi/host-abi.js';

/**
 * Withholds readable data (or EOF, or an error) on a stream for `latencyNs` from when the
 * extension first sees it readable. While withheld, read returns WOULD_BLOCK and poll reports
 * not readable. "First sees" is at most the arrival time: the wrapped `wait` observes arrivals
 * as they wake it. Data left after a read keeps its time; new data after a drained stream
 * starts a new delay. Per-handle state only, never checkpointed.
 */
export class ReadLatency {
  private readonly readySince = new Map<Handle, bigint>();

  constructor(private readonly lower: HostAbi, readonly latencyNs: bigint, private readonly on: StreamKind | null) {}

  /** True when this rule applies to `handle`. */
  applies(handle: Handle): boolean {
    return this.on === null || this.lower.info(handle)?.kind === this.on;
  }

  /** Lower-monotonic time at which `handle`'s input is released; null when nothing is withheld. */
  withheldUntil(handle: Handle): bigint | null {
    if (!this.applies(handle)) return null;
    if (!this.lower.poll(handle).readable) {
      this.readySince.delete(handle);
      return null;
    }
    const now = this.lower.now('monotonic');
    let since = this.readySince.get(handle);
    if (since === undefined) {
      since = now;
      this.readySince.set(handle, since);
    }
    const release = since + this.latencyNs;
    return now >= release ? null : release;
  }

  /** After a read: a drained stream starts a new delay for the next data. */
  afterRead(handle: Handle): void {
    if (!this.lower.poll(handle).readable) this.readySince.delete(handle);
  }

  forget(handle: Handle): void {
    this.readySince.delete(handle);
  }
}
