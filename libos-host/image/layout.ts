/**
 * The reserved region: waterbear's own data inside the guest's linear memory.
 *
 * Preparation raises the memory's initial size by `reservedPages` pages and keeps the pages
 * [originalInitialPages, originalInitialPages + reservedPages) for waterbear. The guest's static
 * data and stack lie below the region; its heap grows above it (the first `memory.grow` returns
 * the page after the region, and `memory.size` reports the old size until then).
 *
 * ```
 * reservedStartByte ─┬─ head canary            CANARY_BYTES (64)
 *                    ├─ Asyncify data header   8 bytes: u32 stack start, u32 stack end (16 reserved)
 *                    ├─ dirty map              1 byte per 4 KiB page of the maximum memory
 *                    ├─ Asyncify stack         ≥ ASYNCIFY_STACK_BYTES, takes the rest
 *                    └─ tail canary            CANARY_BYTES, ends at the region's last byte
 * ```
 */
import { WaterbearError } from '../errors.js';
import { WASM32_MAX_PAGES, WASM_PAGE_BYTES } from './wasm-binary.js';

/** Minimum size of the Asyncify stack, which holds the guest's call stack while it is unwound. */
export const ASYNCIFY_STACK_BYTES = 64 * 1024;

/** Size of each canary (one at each end of the region). */
export const CANARY_BYTES = 64;

/** Size of the Asyncify data header (two u32 pointers); 16 bytes are reserved for it. */
export const ASYNCIFY_HEADER_BYTES = 8;
const ASYNCIFY_HEADER_SLOT_BYTES = 16;

/** Bytes of guest memory tracked by one byte of the dirty map. */
export const DIRTY_PAGE_BYTES = 4096;

/** Alignment of the dirty map and of the Asyncify stack. */
const REGION_ALIGN_BYTES = 16;

export interface ImageLayout {
  /** Initial memory pages declared by the guest, before preparation. */
  originalInitialPages: number;
  /** First byte of the reserved region: originalInitialPages × 64 KiB. */
  reservedStartByte: number;
  /** Pages in the reserved region. */
  reservedPages: number;
  /** Address of the Asyncify data header: u32 current stack position (start), u32 stack end. */
  asyncifyDataAddr: number;
  /** First byte of the Asyncify stack. */
  asyncifyStackStart: number;
  /** One past the last byte of the Asyncify stack. */
  asyncifyStackEnd: number;
  /** Address of the head canary (the region's first byte). */
  canaryAddr: number;
  /** Size of each canary. */
  canaryBytes: number;
  /** Address of the tail canary; it ends at the region's last byte. */
  tailCanaryAddr: number;
  /** Address of the dirty map: byte i covers guest bytes [i × dirtyPageBytes, (i+1) × dirtyPageBytes). */
  dirtyMapAddr: number;
  /** Size of the dirty map: one byte per dirty page of the maximum memory (guest + reserved). */
  dirtyMapBytes: number;
  /** Bytes covered by one dirty-map byte (4096). */
  dirtyPageBytes: number;
  /** The guest's own memory limit in pages, excluding the reserved region. The declared maximum is guestMaxPages + reservedPages. */
  guestMaxPages: number;
}

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/**
 * Lay out the reserved region for a guest whose memory starts with `originalInitialPages` pages
 * and may grow to `guestMaxPages` pages of its own. Picks the smallest number of pages that
 * holds everything; the Asyncify stack takes what is left over. Guest plus region must fit in
 * 4 GiB: a larger guest maximum is lowered to make room (the result's `guestMaxPages` says by how
 * much); when even the initial memory leaves no room, throws WB_GUEST_MEMORY_LIMIT.
 */
export function computeLayout(originalInitialPages: number, guestMaxPages: number): ImageLayout {
  if (!Number.isInteger(originalInitialPages) || originalInitialPages < 0 || !Number.isInteger(guestMaxPages) || guestMaxPages < originalInitialPages) {
    throw new RangeError(`computeLayout: need integers 0 <= originalInitialPages <= guestMaxPages: got ${originalInitialPages}, ${guestMaxPages}`);
  }
  const start = originalInitialPages * WASM_PAGE_BYTES;
  const asyncifyDataAddr = start + CANARY_BYTES;
  const dirtyMapAddr = alignUp(asyncifyDataAddr + ASYNCIFY_HEADER_SLOT_BYTES, REGION_ALIGN_BYTES);
  for (let reservedPages = 1; ; reservedPages++) {
    const guestMax = Math.min(guestMaxPages, WASM32_MAX_PAGES - reservedPages);
    if (guestMax < originalInitialPages) {
      throw new WaterbearError('WB_GUEST_MEMORY_LIMIT',
        `guest's initial memory (${originalInitialPages} pages) leaves no room for waterbear's reserved region (${reservedPages} pages) within 4 GiB`);
    }
    const totalMaxPages = guestMax + reservedPages;
    const dirtyMapBytes = totalMaxPages * (WASM_PAGE_BYTES / DIRTY_PAGE_BYTES);
    const asyncifyStackStart = alignUp(dirtyMapAddr + dirtyMapBytes, REGION_ALIGN_BYTES);
    const end = start + reservedPages * WASM_PAGE_BYTES;
    const tailCanaryAddr = end - CANARY_BYTES;
    const asyncifyStackEnd = tailCanaryAddr;
    if (asyncifyStackEnd - asyncifyStackStart >= ASYNCIFY_STACK_BYTES) {
      return {
        originalInitialPages, reservedStartByte: start, reservedPages,
        asyncifyDataAddr, asyncifyStackStart, asyncifyStackEnd,
        canaryAddr: start, canaryBytes: CANARY_BYTES, tailCanaryAddr,
        dirtyMapAddr, dirtyMapBytes, dirtyPageBytes: DIRTY_PAGE_BYTES,
        guestMaxPages: guestMax,
      };
    }
  }
}

/** One past the region's last byte. */
export function reservedEndByte(layout: ImageLayout): number {
  return layout.reservedStartByte + layout.reservedPages * WASM_PAGE_BYTES;
}

/** The canary pattern: "WaterbearCanary!" four times (64 bytes), easy to spot in a hex dump. */
export function canaryPattern(): Uint8Array {
  const unit = new TextEncoder().encode('WaterbearCanary!');
  const out = new Uint8Array(CANARY_BYTES);
  for (let i = 0; i < CANARY_BYTES; i++) out[i] = unit[i % unit.length];
  return out;
}

/**
 * The bytes a fresh image has at the start of its region: the head canary followed by the
 * Asyncify data header (stack start, stack end). The image's data segments write them.
 */
export function regionHeadBytes(layout: ImageLayout): Uint8Array {
  const out = new Uint8Array(layout.asyncifyDataAddr - layout.canaryAddr + ASYNCIFY_HEADER_BYTES);
  out.set(canaryPattern(), 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(layout.asyncifyDataAddr - layout.canaryAddr, layout.asyncifyStackStart, true);
  dv.setUint32(layout.asyncifyDataAddr - layout.canaryAddr + 4, layout.asyncifyStackEnd, true);
  return out;
}

/** Write both canaries into guest memory (e.g. after restoring a memory built elsewhere). */
export function writeCanaries(memory: Uint8Array, layout: ImageLayout): void {
  const pattern = canaryPattern();
  memory.set(pattern, layout.canaryAddr);
  memory.set(pattern, layout.tailCanaryAddr);
}

/** Address of the first canary byte that differs from the pattern, or null when both are intact. */
export function findDamagedCanary(memory: Uint8Array, layout: ImageLayout): number | null {
  const pattern = canaryPattern();
  for (const base of [layout.canaryAddr, layout.tailCanaryAddr]) {
    for (let i = 0; i < CANARY_BYTES; i++) {
      if (memory[base + i] !== pattern[i]) return base + i;
    }
  }
  return null;
}

/**
 * Throw WB_REGION_CORRUPTED when a canary has been overwritten: the guest (usually its allocator)
 * wrote into waterbear's reserved region. Cheap enough to call at every blocking import.
 */
export function assertCanariesIntact(memory: Uint8Array, layout: ImageLayout): void {
  const at = findDamagedCanary(memory, layout);
  if (at !== null) {
    throw new WaterbearError('WB_REGION_CORRUPTED',
      `the guest wrote into waterbear's reserved memory region (canary byte at address ${at} changed; region is ` +
      `[${layout.reservedStartByte}, ${reservedEndByte(layout)})). Its allocator probably took the heap end from memory.size; ` +
      'report this guest and its toolchain version', { details: { address: at } });
  }
}
