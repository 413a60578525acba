import { ForwardingAbi } from '../libos-host/abi/forwarding-abi.js';
import type { ErrnoLike, Extension, Handle, HostAbi, Interest, Readiness, StreamKind } from '../libos-host/abi/host-abi.js';
import { WaterbearError } from '../libos-host/errors.js';
import { checkRange } from '../libos-host/units.js';
import { HandleOutbox } from './handle-outbox.js';

/** Default bound on output held or waiting to be sent: beyond it the guest's writes block. */
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
const STATE_VERSION = 1;

/** One effect the guest asked for, held until its epoch is acknowledged. */
export type HeldOp =
  | { kind: 'write'; epoch: number; handle: Handle; data: Uint8Array }
  | { kind: 'shutdown'; epoch: number; handle: Handle }
  | { kind: 'close'; epoch: number; handle: Handle };

export interface NetworkBufferOptions {
  maxBufferedBytes?: number;
  /**
   * Consulted before passthrough output leaves: false holds it instead (e.g. the primary cannot
   * prove it still holds its coordinator lease). Acknowledged releases do not consult it: an
   * acknowledgement from every backup of the view is proof enough (see PrimaryProtocol).
   */
  releaseGate?: () => boolean;
  /** Start releasing at once (a view with no backups, "running unprotected"). Default false. */
  passthrough?: boolean;
}

/** What the dashboard and metrics read. */
export interface NetworkBufferStats {
  epoch: number;
  releasedEpoch: number;
  heldBytes: number;
  heldOps: number;
  bufferedBytes: number;
  passthrough: boolean;
  fenced: boolean;
}

const HELD_KINDS: ReadonlySet<StreamKind> = new Set(['connection', 'stdout', 'stderr']);

/**
 * Output commit (Remus): an extension that holds everything the guest sends to the outside —
 * socket writes, shutdowns, closes and console output — tagged with the epoch that produced it,
 * and releases it in order only when `release(epoch)` says a backup of the current view has
 * acknowledged that epoch's checkpoint. Input passes through untouched. Memory is bounded: when
 * full, writes return 0 and the stream polls not-writable, so the guest blocks.
 */
export class NetworkBuffer extends ForwardingAbi implements Extension {
  readonly name = 'network-buffer';
  private epoch = 1;
  private releasedEpoch = 0;
  private held: HeldOp[] = [];
  private heldBytes = 0;
  private readonly outboxes = new Map<Handle, HandleOutbox>();
  private outboxBytes = 0;
  private passthrough: boolean;
  private fenced = false;
  private readonly kinds = new Map<Handle, StreamKind>();
  private readonly wakers = new Set<() => void>();
  private readonly releaseGate: () => boolean;
  readonly maxBufferedBytes: number;

  constructor(lower: HostAbi, options: NetworkBufferOptions = {}) {
    super(lower);
    this.maxBufferedBytes = checkRange(options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES, 64 * 1024, 16 * 1024 ** 3, 'network buffer size');
    this.passthrough = options.passthrough ?? false;
    this.releaseGate = options.releaseGate ?? (() => true);
  }

  // ---- Control, for the replication layer ----

  /** Close the current epoch (called at a checkpoint); returns its number. Output after this belongs to the next. */
  advanceEpoch(): number {
    return this.epoch++;
  }

  /** The epoch now producing output. */
  get currentEpoch(): number { return this.epoch; }

  /** True when output of the current epoch is held (a reason to checkpoint soon). */
  get holdsOutputOfCurrentEpoch(): boolean {
    const last = this.held[this.held.length - 1];
    return last !== undefined && last.epoch === this.epoch;
  }

  /** Release, in order, everything produced in epochs <= `epoch`. Ignored once fenced. */
  release(epoch: number): void {
    if (this.fenced) return;
    if (epoch > this.releasedEpoch) this.releasedEpoch = epoch;
    let i = 0;
    while (i < this.held.length && this.held[i].epoch <= this.releasedEpoch) i++;
    if (i === 0) return;
    const batch = this.held.splice(0, i);
    for (const op of batch) {
      const bytes = op.kind === 'write' ? op.data.length : 0;
      this.heldBytes -= bytes;
      this.outbox(op.handle).push(op);
      this.outboxBytes += bytes;
    }
    for (const box of this.outboxes.values()) box.flush();
    this.wake();
  }

  /**
   * Release without waiting for acknowledgements, from now on. Only for a view that the
   * coordinator installed with no backups (rule 1); everything held is released at once.
   */
  setPassthrough(on: boolean): void {
    this.passthrough = on;
    if (on && this.releaseGate()) this.release(this.epoch);
  }

  /**
   * This replica is no longer primary of the current view: drop everything held (it must never
   * be released) and refuse further output.
   */
  fence(): void {
    this.fenced = true;
    this.held = [];
    this.heldBytes = 0;
    this.wake();
  }

  stats(): NetworkBufferStats {
    return {
      epoch: this.epoch, releasedEpoch: this.releasedEpoch, heldBytes: this.heldBytes, heldOps: this.held.length,
      bufferedBytes: this.heldBytes + this.outboxBytes, passthrough: this.passthrough, fenced: this.fenced,
    };
  }

  /** Oldest epoch with held output, or null: how far output lags behind the guest. */
  oldestHeldEpoch(): number | null { return this.held[0]?.epoch ?? null; }

  // ---- HostAbi ----

  override write(handle: Handle, src: Uint8Array): number | ErrnoLike {
    if (!this.isHeld(handle)) return this.lower.write(handle, src);
    if (this.fenced) return 0;
    const room = this.maxBufferedBytes - this.heldBytes - this.outboxBytes;
    if (room <= 0) return 0;
    const n = Math.min(room, src.length);
    this.hold({ kind: 'write', epoch: this.epoch, handle, data: src.slice(0, n) });
    this.heldBytes += n;
    return n;
  }

  override shutdown(handle: Handle, how: { read: boolean; write: boolean }): void | ErrnoLike {
    if (!this.isHeld(handle)) return this.lower.shutdown(handle, how);
    // Shutting down input is not output: it takes effect now. The write side is output.
    if (how.read) {
      const r = this.lower.shutdown(handle, { read: true, write: false });
      if (typeof r === 'string') return r;
    }
    if (how.write && !this.fenced) this.hold({ kind: 'shutdown', epoch: this.epoch, handle });
    return undefined;
  }

  override close(handle: Handle): void {
    if (!this.isHeld(handle)) { this.lower.close(handle); return; }
    this.kinds.delete(handle);
    if (this.fenced) return; // the replica tears the platform down
    this.hold({ kind: 'close', epoch: this.epoch, handle });
  }

  override poll(handle: Handle): Readiness {
    const r = this.lower.poll(handle);
    if (!this.isHeld(handle)) return r;
    const full = this.heldBytes + this.outboxBytes >= this.maxBufferedBytes;
    return { ...r, writable: !this.fenced && !full && (r.writable || r.error !== null) };
  }

  override wait(interests: readonly Interest[], deadlineNs: bigint | null, signal?: AbortSignal): Promise<void> {
    // Only a wait for a held stream to become writable needs a waker of our own. Most waits are
    // for input; an AbortController and two listeners per wait were ~2% of a busy primary's CPU.
    if (!interests.some((i) => i.write && this.isHeld(i.handle))) return this.lower.wait(interests, deadlineNs, signal);
    const ctrl = new AbortController();
    const onAbort = (): void => ctrl.abort();
    signal?.addEventListener('abort', onAbort);
    if (signal?.aborted === true) ctrl.abort();
    const waker = (): void => ctrl.abort();
    // Room freed by a release can make a held stream writable: wake writers then (and at once
    // if there is room already: waits are level-triggered).
    this.wakers.add(waker);
    if (interests.some((i) => i.write && this.isHeld(i.handle) && this.poll(i.handle).writable)) ctrl.abort();
    return this.lower.wait(interests, deadlineNs, ctrl.signal).finally(() => {
      this.wakers.delete(waker);
      signal?.removeEventListener('abort', onAbort);
    });
  }

  saveState(): unknown {
    return { version: STATE_VERSION, epoch: this.epoch };
  }

  restoreState(state: unknown): void {
    const s = state as { version?: unknown; epoch?: unknown } | null;
    if (s === null || typeof s !== 'object' || s.version !== STATE_VERSION || typeof s.epoch !== 'number') {
      throw new WaterbearError('WB_CHECKPOINT_VERSION', `network-buffer state is not version ${STATE_VERSION}: ${JSON.stringify(state)}`);
    }
    // Held output does not survive a restore: its connections died with the old primary.
    this.epoch = s.epoch;
  }

  // ---- internals ----

  private isHeld(handle: Handle): boolean {
    let kind = this.kinds.get(handle);
    if (kind === undefined) {
      const info = this.lower.info(handle);
      if (info === null) return false;
      kind = info.kind;
      this.kinds.set(handle, kind);
    }
    return HELD_KINDS.has(kind);
  }

  private hold(op: HeldOp): void {
    this.held.push(op);
    if (this.passthrough && this.releaseGate()) this.release(this.epoch);
  }

  /** Passthrough output held back by the gate goes out once the gate opens again. */
  retryGate(): void {
    if (this.passthrough && this.releaseGate()) this.release(this.epoch);
  }

  private outbox(handle: Handle): HandleOutbox {
    let box = this.outboxes.get(handle);
    if (box === undefined) {
      box = new HandleOutbox(this.lower, handle, {
        sent: (n) => { this.outboxBytes -= n; if (n > 0) this.wake(); },
        closed: () => this.outboxes.delete(handle),
      });
      this.outboxes.set(handle, box);
    }
    return box;
  }

  private wake(): void {
    for (const w of [...this.wakers]) w();
  }
}
