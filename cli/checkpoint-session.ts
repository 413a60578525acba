/**
 * The checkpointing side of `waterbear run --checkpoint-dir` and `waterbear restore`: choose the
 * tracker (before the image is prepared), set up the checkpoint directory and store, hand the
 * runtime its hooks, and report what happened.
 */
import type { Extension } from '../libos-host/abi/host-abi.js';
import { WaterbearError } from '../libos-host/errors.js';
import type { ImageChoices, LaunchedLvm } from '../libos-host/runtime/launch.js';
import type { LvmHooks } from '../libos-host/runtime/lvm.js';
import { parseDurationMs, parseSize } from '../libos-host/units.js';
import { initCheckpointDir, openDirStore, type LaunchRecord } from '../checkpoint/checkpoint-dir.js';
import { Checkpointer } from '../checkpoint/checkpointer.js';
import { CheckpointRunner, DEFAULT_CHECKPOINT_INTERVAL_MS, checkCheckpointInterval } from '../checkpoint/checkpoint-runner.js';
import type { CheckpointStore } from '../checkpoint/store/checkpoint-store.js';
import { parseTrackerChoice, selectTracker, type TrackerSelection } from '../checkpoint/trackers/select-tracker.js';
import { ensureDataDir } from '../replica/config/data-dir.js';
import type { CliIo } from './io.js';

/** The checkpoint flags shared by `run` and `restore`. */
export const CHECKPOINT_FLAG_OPTIONS = {
  'checkpoint-interval': { type: 'string' },
  'checkpoint-store-limit': { type: 'string' },
} as const;

/** Parse `--checkpoint-interval` (e.g. 50ms, 1s): WB_CONFIG_INVALID outside 1 ms – 10 s. */
export function parseCheckpointInterval(text: string | undefined, fallbackMs = DEFAULT_CHECKPOINT_INTERVAL_MS): number {
  if (text === undefined) return fallbackMs;
  return checkCheckpointInterval(parseDurationMs(text, '--checkpoint-interval'));
}

/** A live checkpointing session: hooks for the launch, then `attach`, then `close`. */
export class CheckpointSession {
  readonly runner: CheckpointRunner;
  private checkpointer: Checkpointer | null = null;
  private closing: Promise<WaterbearError | null> | null = null;

  constructor(
    readonly dir: string,
    readonly store: CheckpointStore,
    readonly selection: TrackerSelection,
    readonly intervalMs: number,
    private readonly io: CliIo,
  ) {
    let first = true;
    this.runner = new CheckpointRunner({
      store, intervalMs,
      onCommitted: (cp) => {
        if (!first) return;
        first = false;
        io.err(`waterbear: checkpoint epoch ${cp.epoch} written (${cp.full ? 'full' : 'incremental'}, ${cp.pages.length} pages)\n`);
      },
    });
  }

  get hooks(): LvmHooks { return this.runner.hooks; }

  /** Start checkpointing the launched (or restored, continuing `fromEpoch`) LVM. */
  attach(launched: LaunchedLvm, extensions: readonly Extension[], fromEpoch = 0): void {
    this.checkpointer = new Checkpointer(launched.lvm, {
      tracker: this.selection.create(launched.image), extensions, continueFrom: fromEpoch,
    });
    this.runner.attach(launched.lvm, this.checkpointer);
  }

  /**
   * Write what was captured, close the store, print a summary. Returns the error that stopped
   * checkpointing (the guest was stopped for it), if any.
   */
  close(): Promise<WaterbearError | null> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<WaterbearError | null> {
    await this.runner.close();
    const failure = this.runner.failure;
    let latest = 0;
    try { latest = this.store.latestEpoch(); } catch { /* reported by inspect */ }
    this.store.close();
    const p = this.runner.pauseStats();
    this.io.err(`waterbear: ${p.count} checkpoints in ${this.dir} (latest epoch ${latest}); guest pause p50 ${(p.p50Us / 1000).toFixed(3)} ms, ` +
      `p99 ${(p.p99Us / 1000).toFixed(3)} ms, max ${(p.maxUs / 1000).toFixed(3)} ms\n`);
    if (failure !== null) this.io.err(`waterbear: checkpointing failed, the guest was stopped: ${failure.message} [${failure.code}]\n`);
    return failure;
  }
}

export interface StartCheckpointingOptions {
  dir: string;
  guest: Uint8Array;
  programName: string;
  memoryLimitBytes: number;
  intervalText: string | undefined;
  trackerText: string | undefined;
  storeLimitText: string | undefined;
  extensionFlags: LaunchRecord['extensionFlags'];
}

/**
 * For `waterbear run --checkpoint-dir DIR`: validate the flags, choose the tracker, write the
 * guest and launch record into DIR and open its store. Returns the image choices to prepare the
 * guest with and the session. Throws WB_CONFIG_INVALID when DIR (or a parent) is a file or
 * already holds checkpoints.
 */
export function startCheckpointing(o: StartCheckpointingOptions, io: CliIo): { imageChoices: Required<ImageChoices>; session: CheckpointSession } {
  const intervalMs = parseCheckpointInterval(o.intervalText);
  const selection = selectTracker(parseTrackerChoice(o.trackerText ?? 'auto'));
  const maxBytes = o.storeLimitText === undefined ? undefined : parseSize(o.storeLimitText, '--checkpoint-store-limit');
  const imageChoices: Required<ImageChoices> = { dirtyTracking: selection.dirtyTracking, yieldPoints: true };
  // A file in the way is the operator's to fix (WB_CONFIG_INVALID naming the path), not an EEXIST.
  ensureDataDir(o.dir, '--checkpoint-dir');
  initCheckpointDir(o.dir, o.guest, {
    programName: o.programName, memoryLimitBytes: o.memoryLimitBytes, imageChoices, tracker: selection.kind,
    extensionFlags: o.extensionFlags, checkpointIntervalMs: intervalMs,
  });
  const store = openDirStore(o.dir, maxBytes === undefined ? {} : { maxBytes });
  io.err(`waterbear: checkpointing to ${o.dir} every ${intervalMs} ms (tracker ${selection.kind}: ${selection.reason})\n`);
  return { imageChoices, session: new CheckpointSession(o.dir, store, selection, intervalMs, io) };
}

/**
 * The tracker for a restored LVM: its image was prepared for a tracker at launch and must be
 * prepared the same way now, so an instrumented image keeps the instrument tracker; a plain one
 * uses uffd where available, else the shadow tracker.
 */
export function trackerForRestore(record: LaunchRecord): TrackerSelection {
  if (record.imageChoices.dirtyTracking === 'instrument') return selectTracker('instrument');
  const auto = selectTracker('auto');
  return auto.kind === 'uffd' ? auto : selectTracker('shadow');
}
