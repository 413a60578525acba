import { WaterbearError } from '../../libos-host/errors.js';

export interface EpochPolicyOptions {
  /** Checkpoint at least this often while the guest runs (ms). */
  maxIntervalMs: number;
  /** No sooner than this after a checkpoint still in flight: a busy guest batches requests into one epoch (ms). */
  minIntervalMs: number;
  /** Checkpoints captured but not yet acknowledged by every backup, before the guest is slowed. */
  maxInflightEpochs: number;
  /**
   * Checkpoints in flight before the next one waits for an acknowledgement. The guest is not
   * slowed meanwhile: it keeps serving, and everything it does until the ack goes into one
   * epoch. This is what batches under load: without it a busy guest ends an epoch at every
   * block, the backup falls behind by up to `maxInflightEpochs` small checkpoints, and each
   * reply waits for all of them.
   */
  pipelineDepth: number;
  /** Bytes captured but not yet acknowledged, before the guest is slowed. */
  maxLagBytes: number;
}

/** What the primary should do at a suspension point. */
export type EpochDecision =
  | { kind: 'checkpoint' }
  | { kind: 'wait'; untilMs: number } // checkpoint when this time comes, if the guest is still suspended
  | { kind: 'after-ack' } // a checkpoint is due, but the pipeline is full: take it when an ack arrives
  | { kind: 'none' };

/**
 * When to end an epoch, as pure arithmetic over an injected clock reading:
 * - the guest blocked while output of this epoch is held: checkpoint now, so the reply leaves
 *   as soon as the backup acknowledges (low latency) — but, while an earlier checkpoint is still
 *   unacknowledged, not sooner than `minIntervalMs` after it, so a busy guest batches;
 * - the guest has been running for `maxIntervalMs` since the checkpoint (time blocked with nothing
 *   run does not count): checkpoint (bounds what a failover loses to replay).
 * Backpressure is separate: `mustThrottle` says when the guest must wait for acknowledgements.
 */
export class EpochPolicy {
  private lastCheckpointMs: number;
  /** When the guest first ran in the current epoch: the max interval counts from here. */
  private runStartMs: number;

  constructor(private readonly o: EpochPolicyOptions, nowMs: number) {
    if (!(o.pipelineDepth >= 1) || o.pipelineDepth > o.maxInflightEpochs) {
      throw new WaterbearError('WB_CONFIG_INVALID', `checkpoint pipeline depth must be between 1 and the max in-flight epochs (${o.maxInflightEpochs}): got ${o.pipelineDepth}`);
    }
    if (o.minIntervalMs > o.maxIntervalMs) {
      throw new WaterbearError('WB_CONFIG_INVALID', `checkpoint min interval (${o.minIntervalMs} ms) must not exceed the max interval (${o.maxIntervalMs} ms)`);
    }
    this.lastCheckpointMs = nowMs;
    this.runStartMs = nowMs;
  }

  /**
   * At a suspension point: `heldOutput` = output of the current epoch is held; `ran` = the guest
   * ran since the last checkpoint; `inflight` = checkpoints not yet acknowledged by every backup.
   */
  decide(nowMs: number, heldOutput: boolean, ran: boolean, inflight = 0): EpochDecision {
    const d = this.due(nowMs, heldOutput, ran, inflight);
    return d.kind === 'checkpoint' && this.pipelineFull(inflight) ? { kind: 'after-ack' } : d;
  }

  /** True when `inflight` unacknowledged checkpoints leave no room for another. */
  pipelineFull(inflight: number): boolean { return inflight >= this.o.pipelineDepth; }

  private due(nowMs: number, heldOutput: boolean, ran: boolean, inflight: number): EpochDecision {
    const since = nowMs - this.lastCheckpointMs;
    if (heldOutput) {
      // The min interval batches only behind a checkpoint in flight: with none, the backup is
      // idle and waiting would only delay the reply (a lone client waited ~1 ms, timers being late).
      if (since >= this.o.minIntervalMs || inflight === 0) return { kind: 'checkpoint' };
      return { kind: 'wait', untilMs: this.lastCheckpointMs + this.o.minIntervalMs };
    }
    if (ran) {
      return nowMs >= this.nextDeadlineMs() ? { kind: 'checkpoint' } : { kind: 'wait', untilMs: this.nextDeadlineMs() };
    }
    return { kind: 'none' };
  }

  /** When a running guest must next be interrupted for a checkpoint (ms, same clock). */
  nextDeadlineMs(): number { return this.runStartMs + this.o.maxIntervalMs; }

  checkpointed(nowMs: number): void { this.lastCheckpointMs = nowMs; this.runStartMs = nowMs; }

  /**
   * The guest runs again after blocking with nothing run since the last checkpoint: the max
   * interval counts from now. Time spent blocked holds no work a failover could lose, and counting
   * it ended an empty epoch at the first suspension after every idle spell, ahead of the reply's.
   */
  runsFrom(nowMs: number): void { this.runStartMs = nowMs; }

  /** True when the backups lag too far behind: the guest must wait before it continues. */
  mustThrottle(inflightEpochs: number, inflightBytes: number): boolean {
    return inflightEpochs >= this.o.maxInflightEpochs || inflightBytes >= this.o.maxLagBytes;
  }
}
