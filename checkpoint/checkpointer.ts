/**
 * Capturing checkpoints of a running LVM. Call `capture()` while the guest is suspended in an
 * import (in an `onSuspended` hook, or any time `lvm.suspended` is non-null): the guest's whole
 * execution state is then in linear memory (the Asyncify stack) and globals. The capture copies
 * what changed since the previous checkpoint and returns plain data; checksums, encoding and
 * storage happen afterwards (`sealPages`, format/, store/) while the guest runs again, so the
 * guest stops only for the copy (`stats.pauseUs`).
 *
 * The first checkpoint of a chain is full (every non-zero page, the whole VFS); the following
 * ones hold the pages the DirtyTracker reports plus the pages holding the Asyncify data (which
 * the host writes and which change at every unwind, so they are always included).
 */
import type { Extension } from '../libos-host/abi/host-abi.js';
import { saveStackState } from '../libos-host/extensions/stack-state.js';
import type { Lvm } from '../libos-host/runtime/lvm.js';
import { CHECKPOINT_PAGE_BYTES, type CheckpointData, type CheckpointPage } from './checkpoint-data.js';
import type { DirtyTracker } from './trackers/dirty-tracker.js';

export interface CheckpointerOptions {
  /** Finds the pages written between checkpoints. Owned by the checkpointer from now on (closed by `close`). */
  tracker: DirtyTracker;
  /** The LVM's extension stack, bottom-up (their state goes into every checkpoint). */
  extensions?: readonly Extension[];
  /**
   * Continue a chain whose last checkpoint is this epoch (the LVM was just restored from it, so
   * its memory equals the chain): the next capture is incremental epoch `continueFrom + 1`.
   * Default 0: the next capture starts a new chain with a full checkpoint at epoch 1.
   */
  continueFrom?: number;
  /** Wall clock (ms since the Unix epoch) for `stats.capturedAtMs`. Default Date.now. */
  wallClockMs?: () => number;
}

/** True when the 4 KiB page at `byteOffset` of `words` (a Uint32Array over memory) is all zero. */
export function isZeroPage(words: Uint32Array, byteOffset: number): boolean {
  const start = byteOffset >>> 2;
  const end = start + CHECKPOINT_PAGE_BYTES / 4;
  for (let i = start; i < end; i++) if (words[i] !== 0) return false;
  return true;
}

/** Captures the checkpoints of one LVM, in epoch order. */
export class Checkpointer {
  private readonly tracker: DirtyTracker;
  private readonly extensions: readonly Extension[];
  private readonly wallClockMs: () => number;
  private lastEpoch: number;
  private nextFull: boolean;
  private armed = false;

  /** Arms the tracker at once when continuing a chain (the LVM must not have run since its restore). */
  constructor(private readonly lvm: Lvm, options: CheckpointerOptions) {
    this.tracker = options.tracker;
    this.extensions = options.extensions ?? [];
    this.wallClockMs = options.wallClockMs ?? Date.now;
    const from = options.continueFrom ?? 0;
    if (!Number.isSafeInteger(from) || from < 0) throw new RangeError(`Checkpointer: continueFrom must be an epoch >= 0: got ${from}`);
    this.lastEpoch = from;
    this.nextFull = from === 0;
    if (!this.nextFull) {
      this.tracker.arm(lvm.memory);
      this.armed = true;
    }
  }

  /** Epoch of the last checkpoint captured (0 before the first). */
  get epoch(): number { return this.lastEpoch; }

  /** The tracker's kind. */
  get trackerKind(): string { return this.tracker.kind; }

  /**
   * Make the next capture a full checkpoint starting a new chain (after a checkpoint was lost,
   * e.g. its store write failed: the chain after it would have a hole).
   */
  startNewChain(): void { this.nextFull = true; }

  /**
   * Capture the LVM now. The guest must be suspended in an import (throws otherwise: a caller
   * bug). Returns checkpoint `epoch + 1`; page checksums are left to `sealPages`.
   */
  capture(): CheckpointData {
    const started = performance.now();
    const lvm = this.lvm;
    const state = lvm.captureState();
    const memory = lvm.memory;
    const full = this.nextFull;
    const bytes = new Uint8Array(memory.buffer);
    let indices: number[] | Uint32Array;
    let trackerPages: number;
    if (full) {
      if (this.armed) this.tracker.collect(memory); else { this.tracker.arm(memory); this.armed = true; }
      const words = new Uint32Array(memory.buffer);
      const list: number[] = [];
      for (let at = 0; at < bytes.length; at += CHECKPOINT_PAGE_BYTES) {
        if (!isZeroPage(words, at)) list.push(at / CHECKPOINT_PAGE_BYTES);
      }
      indices = list;
      trackerPages = list.length;
    } else {
      const dirty = this.tracker.collect(memory);
      trackerPages = dirty.length;
      indices = withAsyncifyPages(dirty, lvm.asyncifyRanges());
    }
    const { pages } = copyPages(bytes, indices);
    const libos = lvm.os.saveState({ full });
    const extensions = this.extensions.length > 0 ? saveStackState(this.extensions) : null;
    const pauseUs = (performance.now() - started) * 1000;
    this.lastEpoch++;
    this.nextFull = false;
    return {
      epoch: this.lastEpoch, full, imageSha256: lvm.image.imageSha256, memoryBytes: state.memoryBytes,
      pages, globals: state.globals, pending: state.pending, libos, extensions,
      stats: { pauseUs, capturedAtMs: this.wallClockMs(), trackerPages, tracker: full ? 'full' : this.tracker.kind },
    };
  }

  /** Release the tracker. */
  close(): void { this.tracker.close(); }
}

/**
 * Copy the pages `indices` (ascending) of `bytes` into one new buffer, runs of adjacent pages with
 * one memcpy each; the pages are views of that buffer, in order.
 */
export function copyPages(bytes: Uint8Array, indices: ArrayLike<number>): { copy: Uint8Array; pages: CheckpointPage[] } {
  const copy = new Uint8Array(indices.length * CHECKPOINT_PAGE_BYTES);
  const pages: CheckpointPage[] = new Array(indices.length);
  for (let i = 0; i < indices.length;) {
    let j = i + 1;
    while (j < indices.length && indices[j] === indices[j - 1] + 1) j++;
    const at = indices[i] * CHECKPOINT_PAGE_BYTES;
    copy.set(bytes.subarray(at, at + (j - i) * CHECKPOINT_PAGE_BYTES), i * CHECKPOINT_PAGE_BYTES);
    for (let k = i; k < j; k++) {
      pages[k] = { index: indices[k], data: copy.subarray(k * CHECKPOINT_PAGE_BYTES, (k + 1) * CHECKPOINT_PAGE_BYTES) };
    }
    i = j;
  }
  return { copy, pages };
}

/** `dirty` (ascending) plus the pages covering `ranges`, ascending without duplicates. */
export function withAsyncifyPages(dirty: Uint32Array, ranges: ReadonlyArray<readonly [number, number]>): number[] {
  const extra = new Set<number>();
  for (const [start, end] of ranges) {
    if (end <= start) continue;
    for (let p = Math.floor(start / CHECKPOINT_PAGE_BYTES); p <= Math.floor((end - 1) / CHECKPOINT_PAGE_BYTES); p++) extra.add(p);
  }
  for (const p of dirty) extra.delete(p);
  const out = Array.from(dirty);
  if (extra.size === 0) return out;
  out.push(...extra);
  return out.sort((a, b) => a - b);
}
