import { Errno, WasiErrno } from './errno.js';

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();

/**
 * Typed access to the guest's linear memory. Views are re-created after `memory.grow`
 * (which detaches the old ArrayBuffer). Out-of-bounds guest pointers raise EFAULT.
 */
export class GuestMemory {
  private buffer: ArrayBuffer | null = null;
  private u8view = new Uint8Array(0);
  private dv = new DataView(new ArrayBuffer(0));
  private writeObserver: ((ptr: number, len: number) => void) | null = null;

  constructor(private memory: WebAssembly.Memory | null = null) {}

  /** Attach to (another) WebAssembly.Memory, e.g. after instantiation or restore. */
  attach(memory: WebAssembly.Memory): void {
    this.memory = memory;
    this.buffer = null;
  }

  /**
   * Observe host writes into guest memory: `fn(ptr, len)` runs for every `setU*` and `write`, and
   * for every live view handed out by `bytes` and `iovecs` (the caller may write into it, so it
   * counts as written). Used by dirty-page tracking with an instrumented image, whose byte map the
   * guest's own stores mark but host writes would not. null removes the observer.
   */
  setWriteObserver(fn: ((ptr: number, len: number) => void) | null): void {
    this.writeObserver = fn;
  }

  private refresh(): void {
    if (this.memory === null) throw new Error('GuestMemory used before attach');
    if (this.buffer !== this.memory.buffer) {
      this.buffer = this.memory.buffer;
      this.u8view = new Uint8Array(this.buffer);
      this.dv = new DataView(this.buffer);
    }
  }

  get u8(): Uint8Array { this.refresh(); return this.u8view; }
  get view(): DataView { this.refresh(); return this.dv; }
  get byteLength(): number { this.refresh(); return this.u8view.byteLength; }

  check(ptr: number, len: number): void {
    this.refresh();
    if (ptr < 0 || len < 0 || ptr + len > this.u8view.byteLength) throw new WasiErrno(Errno.FAULT);
  }

  u32(ptr: number): number { this.check(ptr, 4); return this.dv.getUint32(ptr, true); }
  setU8(ptr: number, v: number): void { this.check(ptr, 1); this.writeObserver?.(ptr, 1); this.dv.setUint8(ptr, v); }
  setU16(ptr: number, v: number): void { this.check(ptr, 2); this.writeObserver?.(ptr, 2); this.dv.setUint16(ptr, v, true); }
  setU32(ptr: number, v: number): void { this.check(ptr, 4); this.writeObserver?.(ptr, 4); this.dv.setUint32(ptr, v >>> 0, true); }
  u64(ptr: number): bigint { this.check(ptr, 8); return this.dv.getBigUint64(ptr, true); }
  setU64(ptr: number, v: bigint): void { this.check(ptr, 8); this.writeObserver?.(ptr, 8); this.dv.setBigUint64(ptr, BigInt.asUintN(64, v), true); }

  /** A live view (not a copy) of guest bytes. Invalid after the next memory.grow. Counts as written (see setWriteObserver). */
  bytes(ptr: number, len: number): Uint8Array { this.check(ptr, len); this.writeObserver?.(ptr, len); return this.u8view.subarray(ptr, ptr + len); }

  /** Decode a UTF-8 string; invalid UTF-8 raises ILSEQ. */
  string(ptr: number, len: number): string {
    this.check(ptr, len);
    const b = this.u8view.subarray(ptr, ptr + len);
    try {
      return textDecoder.decode(b);
    } catch {
      throw new WasiErrno(Errno.ILSEQ);
    }
  }

  /** Copy `src` into guest memory at `ptr`. */
  write(ptr: number, src: Uint8Array): void { this.check(ptr, src.length); this.writeObserver?.(ptr, src.length); this.u8view.set(src, ptr); }

  /**
   * Read an array of iovec/ciovec {buf: u32, len: u32} as live views. NOT counted as written:
   * for data the host reads (writes out of the guest). Reads into the guest use `fillIovecs`.
   */
  iovecs(iovs: number, count: number): Uint8Array[] {
    this.check(iovs, count * 8);
    const out: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const buf = this.dv.getUint32(iovs + i * 8, true);
      const len = this.dv.getUint32(iovs + i * 8 + 4, true);
      this.check(buf, len);
      out.push(this.u8view.subarray(buf, buf + len));
    }
    return out;
  }

  /**
   * Let `fill` write into the iovecs and return how many bytes it wrote (from the first one on).
   * Only those bytes count as written: a 64 KiB receive buffer that gets 40 bytes dirties one
   * page, not sixteen (every dirty page is copied into the next checkpoint and shipped). If
   * `fill` throws, every buffer counts as written, since it may have written before throwing.
   */
  fillIovecs(iovs: number, count: number, fill: (views: Uint8Array[]) => number): number {
    const views = this.iovecs(iovs, count);
    let n: number;
    try {
      n = fill(views);
    } catch (err) {
      for (const v of views) this.writeObserver?.(v.byteOffset, v.length);
      throw err;
    }
    let left = n;
    for (const v of views) {
      if (left <= 0) break;
      const len = Math.min(left, v.length);
      this.writeObserver?.(v.byteOffset, len);
      left -= len;
    }
    return n;
  }
}

export function encodeUtf8(s: string): Uint8Array { return textEncoder.encode(s); }
