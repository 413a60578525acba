import { CHECKPOINT_PAGE_BYTES } from '../../checkpoint/checkpoint-data.js';
import { copyPages, isZeroPage } from '../../checkpoint/checkpointer.js';
import { crc32c } from '../../checkpoint/format/crc32c.js';

/** Pages per pre-copy message (1 MiB): small enough that reading and sending one is a short step. */
export const PRECOPY_SLICE_PAGES = 256;
/** A round ends the pre-copy when at most this many pages were dirtied meanwhile (8 MiB). */
export const PRECOPY_FINAL_MAX_PAGES = 2048;
/** Rounds before the final delta is sent whatever its size (a guest that writes faster than we copy). */
export const PRECOPY_MAX_ROUNDS = 4;

/** One message worth of pages read from memory. */
export interface PrecopySlice { indices: number[]; crc32c: number[]; data: Uint8Array }

/**
 * Iterative pre-copy of a guest's memory to one backup, while the guest runs. Round 0 reads
 * every non-zero page; each later round re-reads the pages the guest dirtied meanwhile (as the
 * checkpoints captured since the start reported them); when what is left is small, the final
 * full checkpoint carries it with the rest of the state. A page read at any time and dirtied
 * later is always read again, so staged pages plus the final delta equal the state at the final
 * checkpoint.
 */
export class Precopy {
  private round = 0;
  private queue: ArrayLike<number>;
  private pos = 0;
  /** Pages written since the start (from every capture since), not yet re-read. */
  private dirty = new Set<number>();
  private done = false;
  pagesSent = 0;
  /** The first slice carries `start` (the backup opens its staging area). */
  started = false;

  readonly startedAtMs = performance.now();

  constructor(readonly token: string, pageCount: number) {
    this.queue = { length: pageCount } as ArrayLike<number>; // round 0: every page, index = position
  }

  get rounds(): number { return this.round + 1; }
  /** Every round is sent: the next checkpoint carries the final delta. */
  get ready(): boolean { return this.done; }

  /** A checkpoint was captured: its pages changed since they may have been read. */
  noteDirty(indices: Iterable<number>): void {
    for (const i of indices) this.dirty.add(i);
  }

  /**
   * Pages the final checkpoint must carry (ascending), once `ready`: every page dirtied since it
   * was last read (note the final checkpoint's own pages with `noteDirty` first).
   */
  finalPages(): number[] {
    if (!this.done) throw new Error('Precopy.finalPages: the rounds are not over');
    return [...this.dirty].sort((a, b) => a - b);
  }

  /**
   * The next slice read from `memory` now, or null when the rounds are over (`ready`). Round 0
   * skips zero pages (the backup's staging area starts empty, i.e. zero); later rounds send
   * every page they re-read, zero or not.
   */
  nextSlice(memory: Uint8Array): PrecopySlice | null {
    const indices: number[] = [];
    const words = new Uint32Array(memory.buffer, memory.byteOffset, memory.length >>> 2);
    while (indices.length < PRECOPY_SLICE_PAGES && !this.done) {
      if (this.pos >= this.queue.length) { this.endRound(); continue; }
      const page = this.at(this.pos++);
      const at = page * CHECKPOINT_PAGE_BYTES;
      if (at + CHECKPOINT_PAGE_BYTES > memory.length) continue; // past the end (cannot happen: memory only grows)
      if (this.round === 0 && isZeroPage(words, at)) continue;
      indices.push(page);
    }
    if (indices.length === 0) return null;
    const { copy, pages } = copyPages(memory, indices);
    this.pagesSent += indices.length;
    return { indices, crc32c: pages.map((p) => crc32c(p.data)), data: copy };
  }

  private at(position: number): number {
    return this.round === 0 ? position : this.queue[position];
  }

  private endRound(): void {
    if (this.dirty.size <= PRECOPY_FINAL_MAX_PAGES || this.round + 1 >= PRECOPY_MAX_ROUNDS) { this.done = true; return; }
    this.queue = Uint32Array.from([...this.dirty].sort((a, b) => a - b));
    this.dirty = new Set();
    this.pos = 0;
    this.round++;
  }
}
