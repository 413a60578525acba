/**
 * Drives periodic checkpoints of one running LVM into a store (what `waterbear run
 * --checkpoint-dir` uses). The suspension-point rule: a checkpoint is taken only while the guest
 * is suspended in an import. At most every `intervalMs`:
 * - when the guest suspends (blocks, or is suspended on request) and the interval has passed, it
 *   is captured in the `onSuspended` hook;
 * - when it suspends earlier, a timer captures it at the end of the interval if it is still
 *   suspended (an idle server is checkpointed once, shortly after its last request);
 * - after each checkpoint the runner asks the runtime to suspend the guest at its first
 *   suspending import (or yield point) after the next interval, so a busy guest that never
 *   blocks is still checkpointed; a guest that was idle since then gets its interval from when
 *   it wakes (so a sporadic request is captured once, after its reply, not also at its input).
 * The guest stops only for the capture (the copy). Checksums and the store write run after it
 * resumes (on the next event-loop turn; at most MAX_QUEUED_CHECKPOINTS wait, then the guest
 * waits for the store). A failed store write stops the guest (fail-stop): the store still
 * holds the last good epoch, and `failure` says why.
 */
import { WaterbearError } from '../libos-host/errors.js';
import type { Lvm, LvmHooks } from '../libos-host/runtime/lvm.js';
import { checkRange } from '../libos-host/units.js';
import type { CheckpointData } from './checkpoint-data.js';
import type { Checkpointer } from './checkpointer.js';
import type { CheckpointStore } from './store/checkpoint-store.js';

export const DEFAULT_CHECKPOINT_INTERVAL_MS = 50;
export const MIN_CHECKPOINT_INTERVAL_MS = 1;
export const MAX_CHECKPOINT_INTERVAL_MS = 10_000;
/** Captured checkpoints that may wait for the store before the guest waits too. */
export const MAX_QUEUED_CHECKPOINTS = 2;

/** Validate a checkpoint interval (ms): WB_CONFIG_INVALID outside 1 ms – 10 s. */
export function checkCheckpointInterval(ms: number, what = '--checkpoint-interval'): number {
  return checkRange(ms, MIN_CHECKPOINT_INTERVAL_MS, MAX_CHECKPOINT_INTERVAL_MS, what, (v) => (v >= 1000 ? `${v / 1000} s` : `${v} ms`));
}

export interface CheckpointRunnerOptions {
  store: CheckpointStore;
  /** Checkpoint at most this often (ms). */
  intervalMs: number;
  /** Called after each checkpoint is durable in the store. */
  onCommitted?: (cp: CheckpointData, commitMs: number) => void;
}

/** Pause figures over the checkpoints taken so far (microseconds). */
export interface PauseStats { count: number; p50Us: number; p99Us: number; maxUs: number; meanUs: number }

export class CheckpointRunner {
  private lvm: Lvm | null = null;
  private checkpointer: Checkpointer | null = null;
  private lastAtMs = -Infinity;
  private ranSinceCheckpoint = true;
  private timer: NodeJS.Timeout | null = null;
  private readonly queue: CheckpointData[] = [];
  private drainScheduled: Promise<void> | null = null;
  private readonly pausesUs: number[] = [];
  private readonly intervalMs: number;
  /** The error that stopped checkpointing (and the guest), if any. */
  failure: WaterbearError | null = null;

  /** Pass `hooks` to the LVM's launch, then `attach` the launched LVM. */
  readonly hooks: LvmHooks = { onSuspended: (lvm) => this.onSuspended(lvm), onWake: () => this.onWake() };

  constructor(private readonly options: CheckpointRunnerOptions) {
    this.intervalMs = checkCheckpointInterval(options.intervalMs);
  }

  /**
   * Start checkpointing `lvm` with `checkpointer`. For a restored LVM (checkpointer continuing a
   * chain) the first checkpoint comes one interval later; otherwise at its first suspension.
   */
  attach(lvm: Lvm, checkpointer: Checkpointer): void {
    this.lvm = lvm;
    this.checkpointer = checkpointer;
    if (checkpointer.epoch > 0) {
      this.lastAtMs = performance.now();
      this.ranSinceCheckpoint = false;
      this.armSuspendRequest();
    } else {
      lvm.requestSuspend(); // the first (full) checkpoint at the first suspending import
    }
  }

  private async onSuspended(lvm: Lvm): Promise<void> {
    if (this.checkpointer === null || this.failure !== null) return;
    this.ranSinceCheckpoint = true;
    const forced = lvm.suspended?.forced === true;
    const since = performance.now() - this.lastAtMs;
    if (forced || since >= this.intervalMs) {
      this.checkpointNow();
      if (this.queue.length >= MAX_QUEUED_CHECKPOINTS) await this.flush();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => this.onTimer(), Math.ceil(this.intervalMs - since));
    }
  }

  /**
   * A guest idle since its checkpoint wakes: the suspend request armed then has long passed, and
   * would cut the request it woke for in two checkpoints at its first import. Re-arm it from now.
   */
  private onWake(): void {
    if (this.checkpointer === null || this.failure !== null) return;
    if (!this.ranSinceCheckpoint) this.armSuspendRequest();
    this.ranSinceCheckpoint = true;
  }

  private onTimer(): void {
    this.timer = null;
    const lvm = this.lvm;
    if (lvm === null || this.failure !== null || !this.ranSinceCheckpoint) return;
    if (lvm.suspended !== null) this.checkpointNow();
    // Otherwise the guest runs: the suspend request catches it at its next import.
  }

  private checkpointNow(): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    const cp = (this.checkpointer as Checkpointer).capture();
    this.lastAtMs = performance.now();
    this.ranSinceCheckpoint = false;
    this.pausesUs.push(cp.stats.pauseUs);
    this.queue.push(cp);
    this.armSuspendRequest();
    void this.scheduleDrain();
  }

  private armSuspendRequest(): void {
    const lvm = this.lvm as Lvm;
    lvm.requestSuspend(lvm.abi.now('monotonic') + BigInt(Math.round(this.intervalMs * 1e6)));
  }

  private scheduleDrain(): Promise<void> {
    this.drainScheduled ??= new Promise<void>((resolve) => setImmediate(() => {
      this.drainScheduled = null;
      this.drain();
      resolve();
    }));
    return this.drainScheduled;
  }

  private drain(): void {
    while (this.queue.length > 0 && this.failure === null) {
      const cp = this.queue.shift() as CheckpointData;
      const t = performance.now();
      try {
        this.options.store.commit(cp);
      } catch (err) {
        this.failure = err instanceof WaterbearError ? err : new WaterbearError('WB_STORE_IO', `checkpoint store write failed: ${(err as Error).message}`, { cause: err });
        this.queue.length = 0;
        this.lvm?.stop();
        return;
      }
      this.options.onCommitted?.(cp, performance.now() - t);
    }
  }

  /** Write every captured checkpoint to the store now. */
  async flush(): Promise<void> {
    if (this.queue.length > 0) await this.scheduleDrain();
  }

  /** Stop taking checkpoints (the guest exited or is stopping) after writing what was captured. */
  async close(): Promise<void> {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    this.lvm?.requestSuspend(null);
    await this.flush();
    this.checkpointer?.close();
    this.checkpointer = null;
  }

  /** Pauses of the checkpoints taken so far. */
  pauseStats(): PauseStats {
    const s = [...this.pausesUs].sort((a, b) => a - b);
    const at = (q: number): number => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(q * s.length))]);
    return {
      count: s.length, p50Us: at(0.5), p99Us: at(0.99), maxUs: s.length === 0 ? 0 : s[s.length - 1],
      meanUs: s.length === 0 ? 0 : s.reduce((a, b) => a + b, 0) / s.length,
    };
  }
}
