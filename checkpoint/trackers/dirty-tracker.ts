/** Granularity of dirty tracking and of checkpoint pages. */
export const TRACK_PAGE_BYTES = 4096;

export type TrackerKind = 'instrument' | 'uffd' | 'shadow';
/** Every tracker kind. */
export const TRACKER_KINDS: readonly TrackerKind[] = ['instrument', 'uffd', 'shadow'];

/**
 * Finds the 4 KiB pages of guest memory written since the last checkpoint. Implementations:
 * store instrumentation (a byte map the image's instrumented stores mark), kernel write-protect
 * (userfaultfd + PAGEMAP_SCAN), and shadow-copy comparison (for verifying the other two).
 */
export interface DirtyTracker {
  readonly kind: TrackerKind;
  /**
   * Start tracking `memory` from a clean state (after instantiation or a restore). Pages that
   * exist later but not now (memory.grow) are reported dirty by the next `collect`.
   */
  arm(memory: WebAssembly.Memory): void;
  /**
   * Indices (in TRACK_PAGE_BYTES units, ascending, no duplicates) of pages written since `arm`
   * or the previous `collect`, then reset. Called only while the guest is suspended.
   */
  collect(memory: WebAssembly.Memory): Uint32Array;
  /** Release kernel resources (uffd) or buffers (shadow). */
  close(): void;
}
