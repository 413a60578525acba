/**
 * Dirty-page tracker 3 (for verification): keeps a copy of the whole memory and compares every
 * page with it at each collect. Needs nothing from the image or the kernel and sees every write
 * (guest, host, Asyncify), so tests use it as the reference the other trackers must cover. Costs
 * a full memory copy of RAM and a full compare per collect (about as long as copying the memory):
 * fine for small memories and tests only.
 *
 * The compare runs on 64 KiB chunks with Buffer.compare (memcmp), then on the 4 KiB pages of
 * the chunks that differ.
 */
import { TRACK_PAGE_BYTES, type DirtyTracker } from './dirty-tracker.js';
import { PageList } from './page-list.js';

/** Bytes compared at once before looking at single pages. */
export const SHADOW_CHUNK_BYTES = 64 * 1024;

export class ShadowTracker implements DirtyTracker {
  readonly kind = 'shadow' as const;
  private shadow: Buffer | null = null;
  private readonly pages = new PageList();

  arm(memory: WebAssembly.Memory): void {
    const live = Buffer.from(memory.buffer);
    this.shadow = Buffer.allocUnsafeSlow(live.length);
    live.copy(this.shadow);
  }

  collect(memory: WebAssembly.Memory): Uint32Array {
    const shadow = this.shadow;
    if (shadow === null) throw new Error('ShadowTracker.collect before arm');
    const live = Buffer.from(memory.buffer);
    const common = Math.min(shadow.length, live.length);
    for (let chunk = 0; chunk < common; chunk += SHADOW_CHUNK_BYTES) {
      const end = Math.min(chunk + SHADOW_CHUNK_BYTES, common);
      if (live.compare(shadow, chunk, end, chunk, end) === 0) continue;
      for (let at = chunk; at < end; at += TRACK_PAGE_BYTES) {
        const pageEnd = Math.min(at + TRACK_PAGE_BYTES, end);
        if (live.compare(shadow, at, pageEnd, at, pageEnd) === 0) continue;
        this.pages.push(at / TRACK_PAGE_BYTES);
        live.copy(shadow, at, at, pageEnd);
      }
    }
    if (live.length > shadow.length) {
      // memory.grow: every new page is dirty; the shadow grows with the memory.
      this.pages.pushRange(shadow.length / TRACK_PAGE_BYTES, live.length / TRACK_PAGE_BYTES);
      const grown = Buffer.allocUnsafeSlow(live.length);
      live.copy(grown);
      this.shadow = grown;
    }
    return this.pages.take();
  }

  close(): void {
    this.shadow = null;
  }
}
