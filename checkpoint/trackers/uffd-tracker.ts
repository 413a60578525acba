/**
 * Dirty-page tracker 2: kernel write-protect tracking with userfaultfd (WP_ASYNC, Linux >= 6.7)
 * and the PAGEMAP_SCAN ioctl, through the optional native addon in native/uffd (built by
 * `npm install` / `npm run build:native`; see native/uffd/src/uffd.c).
 *
 * The memory's pages are write-protected; the kernel unprotects a page on its first write
 * (no thread, no signal: about a microsecond per first write), and `collect` asks PAGEMAP_SCAN for
 * the unprotected pages, protecting them again in the same call. Needs nothing in the image and
 * sees every write (guest, host, Asyncify).
 *
 * memory.grow: V8 usually grows a wasm memory in place (it reserves the address space up front);
 * the new tail is registered at the next collect and its pages are reported dirty. When the
 * buffer moved (V8 had to copy it), every page is reported dirty and the new range registered.
 */
import { createRequire } from 'node:module';
import { WaterbearError } from '../../libos-host/errors.js';
import { findNativeAddon } from '../native-addon.js';
import { TRACK_PAGE_BYTES, type DirtyTracker } from './dirty-tracker.js';
import { PageList } from './page-list.js';

/** File name of the built addon under native/uffd/build/Release. */
export const UFFD_ADDON_FILE = 'waterbear_uffd.node';

/** The addon's JS surface. */
interface AddonTracker {
  address(buffer: ArrayBuffer): number;
  protect(buffer: ArrayBuffer, fromByte: number, toByte: number): void;
  collect(buffer: ArrayBuffer, fromByte: number, toByte: number, out: Uint32Array, at: number): number;
  forget(): void;
  close(): void;
}
interface Addon {
  probe(): { ok: boolean; reason?: string; pageBytes: number; features: number };
  Tracker: new () => AddonTracker;
}

/** Whether this process can use the uffd tracker, and why not. */
export interface UffdAvailability {
  available: boolean;
  /** Why not (or a short description of what was found). */
  reason: string;
  /** Path of the addon that was loaded, when one was. */
  addonPath: string | null;
}

let addon: Addon | null = null;
let availability: UffdAvailability | null = null;

/**
 * Probe once per process: is the addon built, does it load, and does the kernel do
 * userfaultfd WP_ASYNC + WP_UNPOPULATED + PAGEMAP_SCAN (checked end to end on a scratch mapping)?
 * Never throws.
 */
export function uffdAvailability(): UffdAvailability {
  if (availability !== null) return availability;
  if (process.platform !== 'linux') {
    availability = { available: false, reason: `userfaultfd is Linux-only (this is ${process.platform})`, addonPath: null };
    return availability;
  }
  const path = findNativeAddon(UFFD_ADDON_FILE, 'WATERBEAR_UFFD_ADDON');
  if (path === undefined) {
    availability = { available: false, reason: 'the native addon is not built (npm run build:native; needs node-gyp and a C compiler)', addonPath: null };
    return availability;
  }
  try {
    const loaded = createRequire(import.meta.url)(path) as Addon;
    const probe = loaded.probe();
    if (!probe.ok) {
      availability = { available: false, reason: probe.reason ?? 'the kernel does not support it', addonPath: path };
      return availability;
    }
    addon = loaded;
    availability = { available: true, reason: `userfaultfd WP_ASYNC + PAGEMAP_SCAN (addon ${path})`, addonPath: path };
  } catch (err) {
    availability = { available: false, reason: `the native addon does not load: ${err instanceof Error ? err.message : String(err)}`, addonPath: path };
  }
  return availability;
}

/** Tracks written pages of one wasm memory with userfaultfd write protection. */
export class UffdTracker implements DirtyTracker {
  readonly kind = 'uffd' as const;
  private readonly native: AddonTracker;
  private readonly pages = new PageList();
  /** Data address and length of the range registered so far; -1 before arm. */
  private address = -1;
  private bytes = 0;
  private closed = false;

  /** Throws WB_TRACKER_UNAVAILABLE (with the reason) when the addon or the kernel cannot do it. */
  constructor() {
    const a = uffdAvailability();
    if (!a.available || addon === null) {
      throw new WaterbearError('WB_TRACKER_UNAVAILABLE', `the uffd dirty-page tracker is not available here: ${a.reason}. Use --tracker instrument (or auto)`,
        { details: { reason: a.reason } });
    }
    try {
      this.native = new addon.Tracker();
    } catch (err) {
      throw new WaterbearError('WB_TRACKER_UNAVAILABLE', `the uffd dirty-page tracker cannot start: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  arm(memory: WebAssembly.Memory): void {
    this.checkOpen();
    const buffer = memory.buffer;
    this.native.forget();
    this.native.protect(buffer, 0, buffer.byteLength);
    this.address = this.native.address(buffer);
    this.bytes = buffer.byteLength;
  }

  collect(memory: WebAssembly.Memory): Uint32Array {
    this.checkOpen();
    if (this.address < 0) throw new Error('UffdTracker.collect before arm');
    const buffer = memory.buffer;
    const address = this.native.address(buffer);
    const nowPages = buffer.byteLength / TRACK_PAGE_BYTES;
    if (address !== this.address) {
      // The memory moved: nothing of the old registration applies. Everything is dirty.
      this.native.forget();
      this.pages.pushRange(0, nowPages);
      this.native.protect(buffer, 0, buffer.byteLength);
      this.address = address;
      this.bytes = buffer.byteLength;
      return this.pages.take();
    }
    const oldBytes = Math.min(this.bytes, buffer.byteLength);
    const out = this.pages.reserve(oldBytes / TRACK_PAGE_BYTES);
    this.pages.length += this.native.collect(buffer, 0, oldBytes, out, this.pages.length);
    if (buffer.byteLength > this.bytes) {
      // Grown in place: the new tail is dirty, and tracked from now on.
      this.pages.pushRange(this.bytes / TRACK_PAGE_BYTES, nowPages);
      this.native.protect(buffer, this.bytes, buffer.byteLength);
      this.bytes = buffer.byteLength;
    }
    return this.pages.take();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('UffdTracker used after close');
  }
}
