import type { HostAbi, Interest } from '../abi/host-abi.js';
import { WaterbearError } from '../errors.js';
import type { ExportedGlobal, PreparedImage } from '../image/prepare.js';
import { readSections, SectionId, WASM_PAGE_BYTES } from '../image/wasm-binary.js';
import { LibOs, type Suspender } from '../wasi/lib-os.js';
import { ProcExit } from '../wasi/syscall-host.js';
import { SUSPENDING_WASI_FUNCTIONS, WASI_MODULE, WATERBEAR_MODULE } from '../wasi/wasi-imports.js';
import { DIRTY_MARK_RANGE_EXPORT, hostWriteMarker } from '../image/dirty-instrument.js';
import { YIELD_IMPORT, YieldPacer } from '../image/yield-points.js';
import { CANARY_BYTE, describeTrap } from './trap.js';

/** A WASI call from the module's start function (WB_INVALID_MODULE): the library OS is not attached yet. */
function wasiCallInStart(name: string): WaterbearError {
  return new WaterbearError('WB_INVALID_MODULE',
    `the module's start function calls ${WASI_MODULE}.${name} while the module is instantiated, before _start: ` +
    'WASI functions can be called only from _start on; build a WASI command without a start section (move that code into main)',
    { details: { import: `${WASI_MODULE}.${name}` } });
}

/** A trap in the module's start function (WB_GUEST_TRAP, as describeTrap names it). */
function startTrap(err: Error): WaterbearError {
  const trap = describeTrap(err);
  return new WaterbearError('WB_GUEST_TRAP',
    `${trap.message}, in the module's start function, while the module was instantiated (before _start): fix or remove its start section`,
    { cause: err, details: trap.details });
}

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
  /**
   * True when the runtime suspended the guest on request (`requestSuspend`) BEFORE running the
   * import: there is nothing to wait for, and the import runs (once) when the guest is rewound.
   */
  forced?: boolean;
}

/**
 * The pending block as saved in a checkpoint: ABI handles mean nothing in another process, so
 * the interests are dropped; the import is re-run on rewind and computes them again.
 */
export interface SavedPendingBlock {
  deadlineNs: bigint | null;
  blockedAtNs: bigint;
  forced: boolean;
}

/** A mutable global's value, named by its export (`wb_global_N`). */
export interface SavedGlobal {
  name: string;
  type: ExportedGlobal['type'];
  value: number | bigint;
}

/**
 * The runtime's part of a checkpoint, captured while the guest is suspended (plain data; the
 * checkpointer reads linear memory itself). Memory bytes are not included.
 */
export interface LvmState {
  /** Current size of linear memory in bytes (a multiple of 64 KiB). */
  memoryBytes: number;
  globals: SavedGlobal[];
  pending: SavedPendingBlock;
}

/**
 * A linear memory's contents that write themselves into the restored instance, so that a large
 * image is copied once, from where it is kept, instead of through a buffer of its own size.
 */
export interface MemoryContents {
  readonly byteLength: number;
  /**
   * Write the contents into `memory` (exactly `byteLength` long, all zero). May throw (e.g.
   * WB_CHECKPOINT_CORRUPT for a damaged page): the instance is then discarded, nothing ran.
   */
  writeInto(memory: Uint8Array): void;
}

/** What `Lvm.restore` needs: the runtime state plus the whole linear memory's contents. */
export interface LvmRestoreState {
  /** The guest's linear memory, `byteLength` long (pages never written are zero). */
  memory: Uint8Array | MemoryContents;
  globals: ReadonlyArray<{ name: string; value: number | bigint }>;
  pending: SavedPendingBlock;
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
  /**
   * A blocking wait ended (input arrived, or the guest's own deadline passed): the guest is still
   * suspended and runs next. Not called after a forced suspension, which does not wait.
   */
  onWake?: (lvm: Lvm) => void;
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
  /** Start the next `_start` call by rewinding (after a wait, or first thing after a restore). */
  private rewindNext = false;
  /** Suspend at the first suspending import at or after this ABI monotonic time (ns). */
  private suspendAtNs: bigint | null = null;
  private stopRequested = false;
  private readonly stopController = new AbortController();

  private constructor(readonly image: PreparedImage, readonly os: LibOs, readonly abi: HostAbi, private readonly hooks: LvmHooks) {
    const wasi = os.imports();
    const suspending = new Set<string>(SUSPENDING_WASI_FUNCTIONS);
    // A start section runs guest code inside `new WebAssembly.Instance`, before the library OS has
    // the guest's memory: its WASI calls are refused (only such modules pay for the check).
    const start = readSections(image.bytes).some((sec) => sec.id === SectionId.start) ? { running: true } : null;
    const wrapped: Record<string, (...args: never[]) => number> = {};
    for (const [name, fn] of Object.entries(wasi)) {
      const call = suspending.has(name) ? this.suspendable(fn) : fn;
      wrapped[name] = start === null ? call : (...args: never[]) => {
        if (start.running) throw wasiCallInStart(name);
        return call(...args);
      };
    }
    try {
      this.instance = new WebAssembly.Instance(image.module, { [WASI_MODULE]: wrapped, [WATERBEAR_MODULE]: this.waterbearImports() });
    } catch (err) {
      throw err instanceof WebAssembly.RuntimeError || err instanceof RangeError ? startTrap(err) : err;
    }
    if (start !== null) start.running = false;
    this.exports = this.instance.exports as unknown as AsyncifyExports;
    os.attach(this.exports.memory, this);
    this.markHostWritesIfInstrumented();
    this.resetAsyncifyData();
    this.fillCanary();
  }

  /**
   * Instantiate `image` over `os` (fresh launch). A start section runs here: WB_GUEST_TRAP when it
   * traps, WB_INVALID_MODULE when it calls a WASI function.
   */
  static create(image: PreparedImage, os: LibOs, abi: HostAbi, hooks: LvmHooks = {}): Lvm {
    return new Lvm(image, os, abi, hooks);
  }

  /**
   * Instantiate `image` over a restored `os` and load a captured state into it: grow memory to
   * the saved size, write its contents, set the mutable globals, and arm the guest to be
   * rewound into the import it was suspended in when `run()` starts. Throws
   * WB_CHECKPOINT_CORRUPT when the state does not fit the image (memory size, globals); nothing
   * runs then.
   */
  static restore(image: PreparedImage, os: LibOs, abi: HostAbi, state: LvmRestoreState, hooks: LvmHooks = {}): Lvm {
    const lvm = new Lvm(image, os, abi, hooks);
    lvm.loadState(state);
    return lvm;
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

  /**
   * Suspend the guest at the first suspending import it calls at or after `atAbiMonotonicNs`
   * (default: the next one), even if that import would not block, so that the checkpointer can
   * capture it. The guest is unwound BEFORE the import runs; the import runs exactly once, when
   * the guest is rewound. `null` cancels a request.
   */
  requestSuspend(atAbiMonotonicNs: bigint | null = 0n): void {
    this.suspendAtNs = atAbiMonotonicNs;
  }

  private suspendable(fn: (...args: never[]) => number): (...args: never[]) => number {
    return (...args: never[]) => {
      if (this.rewinding) {
        this.exports.asyncify_stop_rewind();
        this.rewinding = false;
        this.resumedBlock = this.pending;
      } else if (this.suspendAtNs !== null && (this.suspendAtNs === 0n || this.abi.now('monotonic') >= this.suspendAtNs)) {
        this.suspendAtNs = null;
        this.pending = { interests: [], deadlineNs: null, blockedAtNs: this.os.clock.monotonic(), forced: true };
        this.resetAsyncifyData();
        this.exports.asyncify_start_unwind(this.image.layout.asyncifyDataAddr);
        return 0;
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

  // ---- Dirty-page tracking and yield points (images prepared with dirtyTracking / yieldPoints) ----

  /**
   * waterbear's own imports. `yield` is called by the yield points of an image prepared with
   * `yieldPoints` (loop back-edges): it is suspendable, so a `requestSuspend` deadline that passed
   * unwinds the guest there; otherwise (and when re-run after the rewind) it just returns the
   * countdown to the next yield.
   */
  private waterbearImports(): Record<string, (...args: never[]) => number> {
    const pacer = new YieldPacer();
    return { [YIELD_IMPORT]: this.suspendable(() => pacer.next(this.abi.now('monotonic'))) };
  }

  /**
   * An image prepared with `dirtyTracking: 'instrument'` marks its dirty map on every guest store;
   * writes the library OS makes into guest memory must mark it too.
   */
  private markHostWritesIfInstrumented(): void {
    if (this.instance.exports[DIRTY_MARK_RANGE_EXPORT] === undefined) return;
    this.os.mem.setWriteObserver(hostWriteMarker(this.exports.memory, this.image.layout));
  }

  // ---- Running ----

  /**
   * Run the guest until it exits or traps. Resolves with how it ended; never rejects for guest
   * faults (a trap is reported as such); rejects only for host bugs.
   */
  async run(): Promise<LvmExit> {
    try {
      for (;;) {
        if (this.rewindNext) {
          this.rewindNext = false;
          this.rewinding = true;
          this.exports.asyncify_start_rewind(this.image.layout.asyncifyDataAddr);
        }
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
        if (p.forced !== true) {
          const deadline = p.deadlineNs === null ? null : this.os.clock.toAbiMonotonic(p.deadlineNs);
          await this.abi.wait(p.interests, deadline, this.stopController.signal);
          if (this.stopRequested) return { kind: 'exit', code: 0 };
          this.hooks.onWake?.(this);
        }
        this.rewindNext = true;
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

  /**
   * Capture the runtime's state (memory size, mutable globals, pending block) while the guest
   * is suspended. The guest's execution state is then entirely in linear memory (the Asyncify
   * stack in the reserved region, see `asyncifyRanges`) and globals. Throws when not suspended
   * (a caller bug).
   */
  captureState(): LvmState {
    const p = this.suspended;
    if (p === null || !this.isQuiescent()) throw new Error('Lvm.captureState: the guest is not suspended in an import');
    return {
      memoryBytes: this.exports.memory.buffer.byteLength,
      globals: this.image.mutableGlobals.map((g) => ({
        name: g.exportName, type: g.type, value: (this.instance.exports[g.exportName] as WebAssembly.Global).value as number | bigint,
      })),
      pending: { deadlineNs: p.deadlineNs, blockedAtNs: p.blockedAtNs, forced: p.forced === true },
    };
  }

  /**
   * The byte ranges [start, end) of linear memory that hold the Asyncify state of a suspended
   * guest: the data header and the used part of the Asyncify stack. They change at every unwind
   * and are written partly by the host, so a checkpoint must always include them.
   */
  asyncifyRanges(): Array<[number, number]> {
    const { asyncifyDataAddr, asyncifyStackStart, asyncifyStackEnd } = this.image.layout;
    const current = new DataView(this.exports.memory.buffer).getUint32(asyncifyDataAddr, true);
    const used = Math.min(Math.max(current, asyncifyStackStart), asyncifyStackEnd);
    return [[asyncifyDataAddr, asyncifyDataAddr + 8], [asyncifyStackStart, used]];
  }

  private loadState(state: LvmRestoreState): void {
    const memory = this.exports.memory;
    const have = memory.buffer.byteLength;
    const want = state.memory.byteLength;
    const maxBytes = (this.image.layout.guestMaxPages + this.image.layout.reservedPages) * WASM_PAGE_BYTES;
    if (want % WASM_PAGE_BYTES !== 0 || want < have || want > maxBytes) {
      throw new WaterbearError('WB_CHECKPOINT_CORRUPT',
        `the checkpoint's memory is ${want} bytes, which does not fit this image (at least ${have}, at most ${maxBytes}, a multiple of 64 KiB): ` +
        'restore it with the guest and memory limit it was taken with', { details: { memoryBytes: want } });
    }
    const byName = new Map(state.globals.map((g) => [g.name, g.value]));
    for (const g of this.image.mutableGlobals) {
      const v = byName.get(g.exportName);
      if (v === undefined || (g.type === 'i64') !== (typeof v === 'bigint')) {
        throw new WaterbearError('WB_CHECKPOINT_CORRUPT',
          `the checkpoint has no valid value for global ${g.exportName} (${g.name}, ${g.type}): it was taken from another image`);
      }
    }
    if (want > have) memory.grow((want - have) / WASM_PAGE_BYTES);
    const bytes = new Uint8Array(memory.buffer);
    if (state.memory instanceof Uint8Array) {
      bytes.set(state.memory);
    } else {
      bytes.fill(0, 0, have); // the data segments' contents: what the image holds is what counts
      state.memory.writeInto(bytes);
    }
    for (const g of this.image.mutableGlobals) {
      (this.instance.exports[g.exportName] as WebAssembly.Global).value = byName.get(g.exportName);
    }
    this.pending = { interests: [], deadlineNs: state.pending.deadlineNs, blockedAtNs: state.pending.blockedAtNs, forced: state.pending.forced };
    this.rewindNext = true;
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
