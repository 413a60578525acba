/**
 * A checkpoint as plain data: what the checkpointer captures, the codec encodes, the store
 * applies and the restorer loads. Encoding lives in format/, storage in store/.
 */
import type { SavedStack } from '../libos-host/extensions/stack-state.js';
import type { SavedGlobal, SavedPendingBlock } from '../libos-host/runtime/lvm.js';
import type { LibOsState } from '../libos-host/wasi/lib-os.js';
import { TRACK_PAGE_BYTES } from './trackers/dirty-tracker.js';
import { crc32c } from './format/crc32c.js';

/** Size of a checkpoint page (the dirty-tracking granularity). */
export const CHECKPOINT_PAGE_BYTES = TRACK_PAGE_BYTES;

/** One 4 KiB page of linear memory. `crc32c` is filled by `sealPages` (outside the guest's pause). */
export interface CheckpointPage {
  index: number;
  data: Uint8Array;
  crc32c?: number;
  /**
   * Set by `DeltaBases.annotate` on a replicating primary: how `data` differs from the page as
   * captured at `baseEpoch` (format/page-delta.ts). `data` is still the whole page; an encoder
   * asked to (EncodeOptions.deltasAfter) ships the delta instead.
   */
  delta?: PageDelta;
}

/** A page as the byte runs that changed since the version captured at `baseEpoch`. */
export interface PageDelta {
  baseEpoch: number;
  bytes: Uint8Array;
}

/** Numbers about one capture. */
export interface CaptureStats {
  /** How long the guest was stopped for the copy (microseconds). */
  pauseUs: number;
  /** Wall-clock time of the capture (ms since the Unix epoch). */
  capturedAtMs: number;
  /** Pages the tracker reported dirty (before the Asyncify pages were added). */
  trackerPages: number;
  /** The tracker's kind ('full' for the first checkpoint of a chain). */
  tracker: string;
}

export interface CheckpointData {
  /** Checkpoint N is the LVM state at the end of epoch N; epochs start at 1. */
  epoch: number;
  /**
   * First of a chain: every non-zero page and the whole VFS; else applies on top of epoch - 1.
   * A full checkpoint with `stagedFrom` holds only the pages not already staged (or changed since).
   */
  full: boolean;
  imageSha256: string;
  /** Size of linear memory (bytes); pages absent from the chain are zero. */
  memoryBytes: number;
  /** Pages in ascending index order, no duplicates. */
  pages: CheckpointPage[];
  globals: SavedGlobal[];
  pending: SavedPendingBlock;
  libos: LibOsState;
  /** The extension stack's state, or null without extensions. */
  extensions: SavedStack | null;
  stats: CaptureStats;
  /**
   * Only on a full checkpoint: the token of the store's staging area that holds the rest of its
   * image (`CheckpointStore.stagePagesAsync`). The image is the staged pages overwritten by
   * `pages`; pages in neither are zero. Absent: `pages` is the whole image.
   */
  stagedFrom?: string;
}

/** Compute the CRC-32C of every page that has none yet. */
export function sealPages(cp: Pick<CheckpointData, 'pages'>): void {
  for (const p of cp.pages) if (p.crc32c === undefined) p.crc32c = crc32c(p.data);
}

/** Bytes of page data in a checkpoint. */
export function pageBytesOf(cp: CheckpointData): number {
  return cp.pages.length * CHECKPOINT_PAGE_BYTES;
}
