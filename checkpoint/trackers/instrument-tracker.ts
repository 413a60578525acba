/**
 * Dirty-page tracker 1 (portable default): store instrumentation. The image is prepared with
 * `dirtyTracking: 'instrument'` (libos-host/image/dirty-instrument.ts), so every guest store,
 * bulk-memory and atomic write marks `map[page] = 1` in a byte map inside the reserved region; the
 * runtime marks host writes (the library OS writing syscall results) the same way. `collect`
 * scans the map and clears it.
 *
 * The scan reads the map 8 bytes at a time through a Float64Array and skips zero words: map bytes
 * are only ever 0 or 1, so a word is zero exactly when its double is ±0 — and -0 (sign bit only,
 * a byte 0x80) cannot occur. At 1 GiB of memory (a 256 KiB map) a scan of a clean map is 32 Ki
 * word compares.
 *
 * The map's own bytes are never marked; they are all zero after each collect, i.e. at every
 * checkpoint, so a checkpoint never needs them.
 */
import { WaterbearError } from '../../libos-host/errors.js';
import { DIRTY_MARK_RANGE_EXPORT } from '../../libos-host/image/dirty-instrument.js';
import { TRACK_PAGE_BYTES, type DirtyTracker } from './dirty-tracker.js';
import { PageList } from './page-list.js';

/** Where an instrumented image keeps its dirty map (a subset of ImageLayout). */
export interface DirtyMapLayout {
  /** Address of the map in linear memory. */
  dirtyMapAddr: number;
  /** One byte per 4 KiB page of the maximum memory. */
  dirtyMapBytes: number;
}

/** Reads and clears the dirty byte map of an image prepared with `dirtyTracking: 'instrument'`. */
export class InstrumentTracker implements DirtyTracker {
  readonly kind = 'instrument' as const;
  private readonly pages = new PageList();
  private armedPages = -1;

  /**
   * `layout` is the image's layout. Throws WB_CONFIG_INVALID when the map is malformed; use
   * `InstrumentTracker.forImage` to also check that the image is instrumented.
   */
  constructor(private readonly layout: DirtyMapLayout) {
    const { dirtyMapAddr, dirtyMapBytes } = layout;
    if (!Number.isInteger(dirtyMapAddr) || dirtyMapAddr < 0 || !Number.isInteger(dirtyMapBytes) || dirtyMapBytes <= 0) {
      throw new WaterbearError('WB_CONFIG_INVALID', `dirty map must be a non-empty range of guest memory: got address ${dirtyMapAddr}, ${dirtyMapBytes} bytes`);
    }
  }

  /**
   * A tracker for `image`, checking that it was prepared with `dirtyTracking: 'instrument'`
   * (WB_CONFIG_INVALID otherwise: its stores would mark nothing).
   */
  static forImage(image: { module: WebAssembly.Module; layout: DirtyMapLayout }): InstrumentTracker {
    const instrumented = WebAssembly.Module.exports(image.module).some((e) => e.name === DIRTY_MARK_RANGE_EXPORT);
    if (!instrumented) {
      throw new WaterbearError('WB_CONFIG_INVALID',
        "the instrument tracker needs an image prepared with dirtyTracking: 'instrument' (its stores do not mark a dirty map): prepare the image for the selected tracker");
    }
    return new InstrumentTracker(image.layout);
  }

  arm(memory: WebAssembly.Memory): void {
    const buffer = memory.buffer;
    this.checkFits(buffer);
    new Uint8Array(buffer, this.layout.dirtyMapAddr, this.layout.dirtyMapBytes).fill(0);
    this.armedPages = buffer.byteLength / TRACK_PAGE_BYTES;
  }

  collect(memory: WebAssembly.Memory): Uint32Array {
    if (this.armedPages < 0) throw new Error('InstrumentTracker.collect before arm');
    const buffer = memory.buffer;
    this.checkFits(buffer);
    const nowPages = buffer.byteLength / TRACK_PAGE_BYTES;
    const { dirtyMapAddr, dirtyMapBytes } = this.layout;
    const scanBytes = Math.min(nowPages, dirtyMapBytes);
    const map = new Uint8Array(buffer, dirtyMapAddr, scanBytes);
    const oldPages = Math.min(this.armedPages, nowPages);
    let tail = 0;
    if (dirtyMapAddr % 8 === 0) {
      const words = Math.floor(scanBytes / 8);
      const w64 = new Float64Array(buffer, dirtyMapAddr, words);
      for (let w = 0; w < words; w++) {
        if (w64[w] === 0) continue;
        const base = w * 8;
        for (let b = 0; b < 8; b++) if (map[base + b] !== 0 && base + b < oldPages) this.pages.push(base + b);
        w64[w] = 0;
      }
      tail = words * 8;
    }
    for (let p = tail; p < scanBytes; p++) {
      if (map[p] === 0) continue;
      if (p < oldPages) this.pages.push(p);
      map[p] = 0;
    }
    // Pages added by memory.grow since the last collect: all dirty (they are new to the checkpoint).
    this.pages.pushRange(oldPages, nowPages);
    this.armedPages = nowPages;
    return this.pages.take();
  }

  close(): void {
    this.armedPages = -1;
  }

  private checkFits(buffer: ArrayBuffer): void {
    if (this.layout.dirtyMapAddr + this.layout.dirtyMapBytes > buffer.byteLength) {
      throw new WaterbearError('WB_CONFIG_INVALID', `the dirty map [${this.layout.dirtyMapAddr}, +${this.layout.dirtyMapBytes}) lies outside the ${buffer.byteLength}-byte memory: is this the image's memory?`);
    }
  }
}
