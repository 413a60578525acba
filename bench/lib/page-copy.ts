/**
 * The copy half of a checkpoint pause: copy the dirty pages of guest memory into a checkpoint
 * buffer, one `set` per run of consecutive pages.
 */
import { TRACK_PAGE_BYTES } from '../../checkpoint/trackers/dirty-tracker.js';

/** Copy `pages` (ascending) of `memory` into `dst` (at least pages.length × 4 KiB); returns bytes copied. */
export function copyDirtyPages(memory: Uint8Array, pages: Uint32Array, dst: Uint8Array): number {
  let out = 0;
  let i = 0;
  while (i < pages.length) {
    let j = i + 1;
    while (j < pages.length && pages[j] === pages[j - 1] + 1) j++;
    const from = pages[i] * TRACK_PAGE_BYTES;
    const len = (j - i) * TRACK_PAGE_BYTES;
    dst.set(memory.subarray(from, from + len), out);
    out += len;
    i = j;
  }
  return out;
}
