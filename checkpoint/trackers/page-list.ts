/**
 * A growable list of page indices, reused across collects so that a checkpoint allocates only
 * its result. Internal to the trackers.
 */
export class PageList {
  private buf: Uint32Array;
  length = 0;

  constructor(initialCapacity = 1024) {
    this.buf = new Uint32Array(Math.max(16, initialCapacity));
  }

  /** Make room for `n` more entries; returns the backing array (valid until the next call). */
  reserve(n: number): Uint32Array {
    const need = this.length + n;
    if (need > this.buf.length) {
      let cap = this.buf.length;
      while (cap < need) cap *= 2;
      const next = new Uint32Array(cap);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    return this.buf;
  }

  push(page: number): void {
    if (this.length === this.buf.length) this.reserve(1);
    this.buf[this.length++] = page;
  }

  /** Append pages [from, to). */
  pushRange(from: number, to: number): void {
    if (to <= from) return;
    const b = this.reserve(to - from);
    for (let p = from; p < to; p++) b[this.length++] = p;
  }

  /** A copy of the entries (the caller owns it), and reset. */
  take(): Uint32Array {
    const out = this.buf.slice(0, this.length);
    this.length = 0;
    return out;
  }
}
