import type { HostAbi, Interest } from '../abi/host-abi.js';
import { WaterbearError } from '../errors.js';
import type { PreparedImage } from '../image/prepare.js';
import { LibOs, type Suspender } from '../wasi/lib-os.js';
import { ProcExit } from '../wasi/syscall-host.js';
import { SUSPENDING_WASI_FUNCTIONS, WASI_MODULE } from '../wasi/wasi-imports.js';
import { CANARY_BYTE, describeTrap } from './trap.js';

/** Asyncify's state values (binaryen `asyncify_get_state`). */
const ASYNCIFY_NORMAL = 0;

interface AsyncifyExports {
  _start: () => void;
  memory: WebAssembly.Memory;
  asyncify_start_unwind: (dataAddr: number) => void;
  asyncify_stop_unwind: () => void;
  asyncify_start_rewind: (dataAddr: number) => void;
  asyncify_stop_rewind: () => void;
  asyncify_get_state: () => number;
}

/** A suspended guest's pending wait, in guest monotonic time (so it survives a restore). */
export interface PendingBlock {
  interests: readonly Interest[];
  deadlineNs: bigint | null;
  blockedAtNs: bigint;
}

/** How a guest run ended. */
export type LvmExit =
  | { kind: 'exit'; code: number }
  | { kind: 'trap'; error: WaterbearError };

/** Hooks for layers above (checkpointing, output commit): called while the guest is suspended. */
export interface LvmHooks {
  /**
   * The guest is unwound inside a suspending import: its whole execution state is in linear
   * memory and globals. A checkpoint may be taken here. Awaited before the guest waits.
   */
  onSuspended?: (lvm: Lvm) => void | Promise<void>;
}

/**
 * A lightweight VM: one prepared image instance plus its library OS. Runs the guest, suspending
 * it with Asyncify whenever a WASI call would block, and waiting on the host ABI meanwhile.
 */
export class Lvm implements Suspender {
  readonly instance: WebAssembly.Instance;
  private readonly exports: AsyncifyExports;
  private pending: PendingBlock | null = null;
  private rewinding = false;
  private resumedBlock: PendingBlock | null = null;
  private running = false;
  private stopRequested = false;
  private readonly stopController = new AbortController();

  private constructor(readonly image: PreparedImage, readonly os: LibOs, readonly abi: HostAbi, private readonly hooks: LvmHooks) {
    const wasi = os.imports();
    const suspending = new Set<string>(SUSPENDING_WASI_FUNCTIONS);
    const wrapped: Record<string, (...args: never[]) => number> = {};
    for (const [name, fn] of Object.entries(wasi)) {
      wrapped[name] = suspending.has(name) ? this.suspendable(fn) : fn;
    }
    this.instance = new WebAssembly.Instance(image.module, { [WASI_MODULE]: wrapped });
    this.exports = this.instance.exports as unknown as AsyncifyExports;
    os.attach(this.exports.memory, this);
    this.resetAsyncifyData();
    this.fillCanary();
  }

  /** Instantiate `image` over `os` (fresh launch). */
  static create(image: PreparedImage, os: LibOs, abi: HostAbi, hooks: LvmHooks = {}): Lvm {
    return new Lvm(image, os, abi, hooks);
  }

  get memory(): WebAssembly.Memory { return this.exports.memory; }

  /** True while the guest is suspended in an import (between unwind and rewind). */
  get suspended(): PendingBlock | null { return this.running ? null : this.pending; }

  // ---- Suspender (used by the library OS) ----

  block(interests: readonly Interest[], deadlineNs: bigint | null): number {
    this.pending = {
      interests,
      deadlineNs,
      blockedAtNs: this.resumedBlock?.blockedAtNs ?? this.os.clock.monotonic(),
    };
    return 0;
  }

  get resumed(): { deadlineNs: bigint | null; blockedAtNs: bigint } | null {
    return this.resumedBlock;
  }

  private suspendable(fn: (...args: never[]) => number): (...args: never[]) => number {
    return (...args: never[]) => {
      if (this.rewinding) {
        this.exports.asyncify_stop_rewind();
        this.rewinding = false;
        this.resumedBlock = this.pending;
      }
      this.pending = null;
      const result = fn(...args);
      this.resumedBlock = null;
      if (this.pending !== null) {
        this.resetAsyncifyData();
        this.exports.asyncify_start_unwind(this.image.layout.asyncifyDataAddr);
      }
      return result;
    };
  }

  // ---- Running ----

  /**
   * Run the guest until it exits or traps. Resolves with how it ended; never rejects for guest
   * faults (a trap is reported as such); rejects only for host bugs.
   */
  async run(): Promise<LvmExit> {
    try {
      for (;;) {
        this.running = true;
        try {
          this.exports._start();
        } finally {
          this.running = false;
        }
        if (this.pending === null) return { kind: 'exit', code: 0 };
        this.exports.asyncify_stop_unwind();
        this.checkCanary();
        if (this.hooks.onSuspended !== undefined) await this.hooks.onSuspended(this);
        if (this.stopRequested) return { kind: 'exit', code: 0 };
        const p = this.pending;
        const deadline = p.deadlineNs === null ? null : this.os.clock.toAbiMonotonic(p.deadlineNs);
        await this.abi.wait(p.interests, deadline, this.stopController.signal);
        if (this.stopRequested) return { kind: 'exit', code: 0 };
        this.rewinding = true;
        this.exports.asyncify_start_rewind(this.image.layout.asyncifyDataAddr);
      }
    } catch (err) {
      if (err instanceof ProcExit) return { kind: 'exit', code: err.code };
      if (err instanceof WaterbearError) return { kind: 'trap', error: err };
      if (err instanceof WebAssembly.RuntimeError || err instanceof RangeError) {
        return { kind: 'trap', error: describeTrap(err) };
      }
      throw err;
    }
  }

  /** Ask a suspended guest to stop at its next suspension (for shutdown). */
  stop(): void {
    this.stopRequested = true;
    this.stopController.abort();
  }

  /** Mutable globals, by export name, as their current values. */
  readGlobals(): Array<{ name: string; value: number | bigint }> {
    return this.image.mutableGlobals.map((g) => ({
      name: g.exportName,
      value: (this.instance.exports[g.exportName] as WebAssembly.Global).value as number | bigint,
    }));
  }

  /** Asyncify state: must be NORMAL while suspended (after stop_unwind). */
  asyncifyState(): number { return this.exports.asyncify_get_state(); }

  isQuiescent(): boolean { return !this.running && this.asyncifyState() === ASYNCIFY_NORMAL; }

  private resetAsyncifyData(): void {
    const { asyncifyDataAddr, asyncifyStackStart, asyncifyStackEnd } = this.image.layout;
    const dv = new DataView(this.exports.memory.buffer);
    dv.setUint32(asyncifyDataAddr, asyncifyStackStart, true);
    dv.setUint32(asyncifyDataAddr + 4, asyncifyStackEnd, true);
  }

  private fillCanary(): void {
    const { canaryAddr, canaryBytes } = this.image.layout;
    new Uint8Array(this.exports.memory.buffer, canaryAddr, canaryBytes).fill(CANARY_BYTE);
  }

  /** The reserved region must never be written by the guest: a broken allocator shows up here. */
  private checkCanary(): void {
    const { canaryAddr, canaryBytes } = this.image.layout;
    const bytes = new Uint8Array(this.exports.memory.buffer, canaryAddr, canaryBytes);
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] !== CANARY_BYTE) {
        throw new WaterbearError('WB_REGION_CORRUPTED',
          `the guest wrote into waterbear's reserved memory region (canary at ${canaryAddr + i} changed); ` +
          'its allocator does not respect the reserved region — rebuild it with a current wasi-libc and report this guest');
      }
    }
  }
}
