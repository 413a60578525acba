/**
 * The recent page versions that sub-page deltas are taken against. A replicating primary and
 * each backup keep one each and feed it the same checkpoints in the same order (the primary what
 * it captures, a backup what it verifies), so a delta's base (page, epoch) is one the backup
 * holds; if it does not (a rule here changed, a bug), decoding refuses the checkpoint and the
 * primary sends a full image. The rules, identical on both sides:
 *   - a full checkpoint starts over: nothing before it is a base, nor are its own pages;
 *   - an incremental checkpoint's pages become the latest versions of those pages, unless it has
 *     more than DELTA_MAX_CHECKPOINT_PAGES pages (then those pages have no base until rewritten);
 *   - a version serves for DELTA_WINDOW_EPOCHS epochs after its own.
 * Memory is bounded by the window: at most DELTA_WINDOW_EPOCHS x DELTA_MAX_CHECKPOINT_PAGES pages
 * (16 MiB), usually far fewer (a page rewritten every epoch is held once).
 */
import type { CheckpointData } from '../checkpoint-data.js';
import { diffPage } from './page-delta.js';

/** A page version is a delta base for this many epochs after the one that captured it. */
export const DELTA_WINDOW_EPOCHS = 32;
/** Larger checkpoints carry no deltas and leave no bases (bulk writes: whole pages anyway). */
export const DELTA_MAX_CHECKPOINT_PAGES = 128;

interface Version { epoch: number; data: Uint8Array }

export class DeltaBases {
  private readonly latest = new Map<number, Version>();
  /** The pages each recorded epoch set, oldest first: what the window lets go of. */
  private readonly recorded: Array<{ epoch: number; indices: number[] }> = [];

  /** Pages held as bases (for tests and stats). */
  get size(): number { return this.latest.size; }

  reset(): void {
    this.latest.clear();
    this.recorded.length = 0;
  }

  /**
   * Primary: give each page of `cp` that has a recent version a delta against it (when the delta
   * is small enough to pay), then record `cp`. Returns how many pages got one.
   */
  annotate(cp: CheckpointData): number {
    let n = 0;
    if (!cp.full && cp.pages.length <= DELTA_MAX_CHECKPOINT_PAGES) {
      for (const p of cp.pages) {
        const base = this.latest.get(p.index);
        if (base === undefined) continue;
        const bytes = diffPage(base.data, p.data);
        if (bytes === null) continue;
        p.delta = { baseEpoch: base.epoch, bytes };
        n++;
      }
    }
    this.record(cp);
    return n;
  }

  /** `cp` is the chain's newest checkpoint (its pages whole: decoded, or captured). */
  record(cp: Pick<CheckpointData, 'epoch' | 'full' | 'pages'>): void {
    if (cp.full) { this.reset(); return; }
    if (cp.pages.length > DELTA_MAX_CHECKPOINT_PAGES) {
      for (const p of cp.pages) this.latest.delete(p.index);
    } else {
      const indices = new Array<number>(cp.pages.length);
      for (let i = 0; i < cp.pages.length; i++) {
        const p = cp.pages[i];
        this.latest.set(p.index, { epoch: cp.epoch, data: p.data });
        indices[i] = p.index;
      }
      this.recorded.push({ epoch: cp.epoch, indices });
    }
    // The next checkpoint (epoch + 1) may use versions from epoch + 1 - DELTA_WINDOW_EPOCHS on.
    const oldest = cp.epoch + 1 - DELTA_WINDOW_EPOCHS;
    while (this.recorded.length > 0 && this.recorded[0].epoch < oldest) {
      const { epoch, indices } = this.recorded.shift()!;
      for (const i of indices) if (this.latest.get(i)?.epoch === epoch) this.latest.delete(i);
    }
  }

  /** Backup: page `index` as captured at `epoch`, if that is the version held. */
  base(index: number, epoch: number): Uint8Array | undefined {
    const v = this.latest.get(index);
    return v !== undefined && v.epoch === epoch ? v.data : undefined;
  }
}
