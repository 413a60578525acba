import type * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ENCODE_SLICE_PAGES, encodeCheckpoint, encodeCheckpointSliced } from '../../checkpoint/format/checkpoint-codec.js';
import { CHECKPOINT_PAGE_BYTES, type CheckpointData } from '../../checkpoint/checkpoint-data.js';
import { copyPages, type Checkpointer } from '../../checkpoint/checkpointer.js';
import { DELTA_WINDOW_EPOCHS, DeltaBases } from '../../checkpoint/format/delta-bases.js';
import { WaterbearError, isWaterbearError } from '../../libos-host/errors.js';
import type { NodePlatform, PlatformIoStats } from '../../libos-host/platform/node-platform.js';
import type { Lvm, LvmExit } from '../../libos-host/runtime/lvm.js';
import type { NetworkBuffer, NetworkBufferStats } from '../../network-buffer/network-buffer.js';
import type { ClusterConfig } from '../config/cluster-config.js';
import type { Coordinator } from '../coord/coordinator.js';
import { RepeatedWarning, type Logger } from '../log.js';
import { refusalWarnings, warnCorrupt, type RefusalWarnings } from '../wire/replication-wire.js';
import { JOIN_CATCH_UP_EPOCHS, PrimaryProtocol, type PrimaryAction } from '../protocol/primary-protocol.js';
import { formatView, type View } from '../protocol/view.js';
import { BackupLink } from './backup-link.js';
import { EarliestTimer } from './earliest-timer.js';
import { EpochPolicy } from './epoch-policy.js';
import { Precopy } from './precopy.js';

/** How often the primary renews its coordinator lease. */
export const LEASE_RENEW_INTERVAL_MS = 100;
/** A primary whose lease stays lost this long steps down (frees the service address). */
export const STEP_DOWN_AFTER_LEASE_LOSS_MS = 2000;
/**
 * One that may not step down (it may hold the only state) but whose view has a backup that may
 * be taking over frees the service address after this long instead (holdSole). Shorter: parking
 * keeps the state and is undone when the lease returns; it only cuts the clients' connections.
 */
export const PARK_AFTER_LEASE_LOSS_MS = 500;
/** How long a planned switchover may wait for acknowledgements and the view change. */
export const SWITCHOVER_TIMEOUT_MS = 10_000;

export interface PrimaryDriverOptions {
  self: string;
  config: ClusterConfig;
  view: View;
  lvm: Lvm;
  platform: NodePlatform;
  nb: NetworkBuffer;
  checkpointer: Checkpointer;
  /** Epoch the LVM was restored from (0 for a fresh start). */
  startEpoch: number;
  coordinator: Coordinator;
  credentials: grpc.ChannelCredentials;
  log: Logger;
  nowMs?: () => number;
}

/** A captured checkpoint and who gets what of it (a pre-copied backup gets its own final). */
/** A captured checkpoint on its way out: `deltaPages` of its pages carry a sub-page delta. */
interface Shipment { epoch: number; cp: CheckpointData; deltaPages: number; sends: Array<{ link: BackupLink; cp: CheckpointData; precopy?: Precopy }> }

/** Nack codes of a backup whose checkpoint store cannot write (full disk, I/O errors). */
const STORE_FAILURE_CODES = new Set(['WB_STORE_FULL', 'WB_STORE_IO']);

/** Why the primary stopped. */
export type PrimaryEnd = { kind: 'fenced'; reason: string } | { kind: 'guest-exit'; exit: LvmExit } | { kind: 'stopped' };

/** Numbers for status, the dashboard and metrics. */
export interface PrimaryStats {
  checkpoints: number;
  checkpointBytes: number;
  lastPauseUs: number;
  lastCheckpointBytes: number;
  capturedEpoch: number;
  releasedEpoch: number;
  /** Full images sent by iterative pre-copy (final checkpoints), and the pages they staged. */
  precopies: number;
  precopyPages: number;
  /** Checkpoint pages given a sub-page delta (replication.pageDeltas), and all pages captured. */
  deltaPages: number;
  capturedPages: number;
  /** Checkpoints a backup refused (nacks: each costs a full image). */
  refusals: number;
  /** The service address is unbound while the lease is lost (see holdSole); read from the platform. */
  readonly serviceParked: boolean;
}

/** What `PrimaryDriver.guestSnapshot` returns. */
export interface PrimaryGuestSnapshot {
  memoryBytes: number;
  imageSha256: string;
  output: NetworkBufferStats;
  io: PlatformIoStats;
  /** The extension stack above the platform, top first. */
  extensions: string[];
}

/**
 * Runs the guest as primary: ends epochs at suspension points (EpochPolicy), captures and ships
 * checkpoints to every backup link, feeds acknowledgements to the PrimaryProtocol and carries out
 * its actions on the network buffer, the links and the coordinator.
 */
export class PrimaryDriver extends EventEmitter {
  readonly protocol: PrimaryProtocol;
  private readonly links = new Map<string, BackupLink>();
  private readonly policy: EpochPolicy;
  private readonly nowMs: () => number;
  /** Failed proposals repeat every tick while the coordinator is down: warn at most every few seconds. */
  private readonly proposalFailed: RepeatedWarning;
  /** Backups that sent corrupt messages: warned about once per backup, kind and interval (a link reopens every heartbeat interval). */
  private readonly refusalWarnings: RefusalWarnings;
  private ran = true;
  /** A checkpoint due at a time (checkpointAt). */
  private readonly pendingTimer: EarliestTimer;
  /** A checkpoint is due but the pipeline is full: take it at the next acknowledgement. */
  private dueAfterAck = false;
  /** Takes a checkpoint that waited for an ack too long (see markDue). */
  private dueTimer: NodeJS.Timeout | null = null;
  private leaseTimer: NodeJS.Timeout | null = null;
  private ackWaiters: Array<() => void> = [];
  private ended: PrimaryEnd | null = null;
  private endResolve: ((e: PrimaryEnd) => void) | null = null;
  private captured: number;
  /** Set during a planned switchover: the guest was stopped on purpose after a final checkpoint. */
  private frozen = false;
  /** True once a keepalive succeeded: only a lease once held can be lost. */
  private leaseConfirmed = false;
  private leaseLostSinceMs: number | null = null;
  /** Lease lost for long, but not stepping down: this replica may hold the only state (logged once). */
  private holdingSole = false;
  /** A rebinding of the parked service address is under way (unparkService). */
  private unparking = false;
  /** Backups whose link died: their removal is proposed until a view without them commits. */
  private readonly failedBackups = new Set<string>();
  /** Backups and joiners refusing checkpoints because their store fails, since when (see the nack handler). */
  private readonly storeRefusing = new Map<string, number>();
  /** Checkpoints being encoded and sent in order (see ship); null when none is queued. */
  private shipping: Promise<void> | null = null;
  /** Nack-triggered full resends are limited to one per heartbeat interval. */
  private lastNackResendMs = -Infinity;
  /** A resend deferred by that limit (never dropped: see the nack handler). */
  private nackResendTimer: NodeJS.Timeout | null = null;
  readonly stats: PrimaryStats;
  /** Recent page versions for sub-page deltas (null: replication.pageDeltas is off). */
  private readonly deltaBases: DeltaBases | null;

  constructor(private readonly o: PrimaryDriverOptions) {
    super();
    this.nowMs = o.nowMs ?? (() => performance.now());
    this.proposalFailed = new RepeatedWarning(o.log, 'view proposal failed', this.nowMs);
    this.refusalWarnings = refusalWarnings(o.log, this.nowMs);
    this.pendingTimer = new EarliestTimer(this.nowMs);
    const r = o.config.replication;
    this.policy = new EpochPolicy({
      maxIntervalMs: r.checkpointMaxIntervalMs, minIntervalMs: r.checkpointMinIntervalMs,
      maxInflightEpochs: r.maxInflightEpochs, pipelineDepth: r.checkpointPipelineDepth, maxLagBytes: r.maxLagBytes,
    }, this.nowMs());
    this.captured = o.startEpoch;
    this.protocol = new PrimaryProtocol(o.self, o.view, o.startEpoch, Math.max(JOIN_CATCH_UP_EPOCHS, r.maxInflightEpochs));
    this.deltaBases = r.pageDeltas ? new DeltaBases() : null;
    const platform = o.platform;
    this.stats = {
      checkpoints: 0, checkpointBytes: 0, lastPauseUs: 0, lastCheckpointBytes: 0, capturedEpoch: o.startEpoch, releasedEpoch: o.startEpoch, precopies: 0, precopyPages: 0,
      deltaPages: 0, capturedPages: 0, refusals: 0,
      get serviceParked() { return platform.serviceParked; },
    };
  }

  /** Run until fenced, the guest exits, or `stop`. */
  async run(): Promise<PrimaryEnd> {
    const ended = new Promise<PrimaryEnd>((resolve) => { this.endResolve = resolve; });
    const unwatch = this.o.coordinator.watchViews((v) => this.apply(this.protocol.onViewCommitted(v)));
    this.leaseTimer = setInterval(() => this.renewLease(), LEASE_RENEW_INTERVAL_MS);
    void this.renewLease();
    this.apply(this.protocol.start());
    this.o.log.info({ view: this.o.view }, `primary in ${formatView(this.o.view)}`);
    void this.o.lvm.run().then(
      (exit) => { if (!this.frozen) this.end({ kind: 'guest-exit', exit }); },
      (err: Error) => this.end({ kind: 'guest-exit', exit: { kind: 'trap', error: err as never } }),
    );
    const end = await ended;
    unwatch();
    return end;
  }

  /** The LVM hook: called at every suspension point, with the guest unwound. */
  async onSuspended(): Promise<void> {
    if (this.ended !== null) return;
    const now = this.nowMs();
    const forced = this.o.lvm.suspended?.forced === true;
    const d = this.policy.decide(now, this.o.nb.holdsOutputOfCurrentEpoch, this.ran, this.inflightEpochs());
    if (forced) this.ran = true; // it runs on after this suspension (a blocked guest: at onWake)
    if (d.kind === 'checkpoint' || this.anyLinkNeedsFull() || this.anyPrecopyReady()) this.checkpointNow();
    else if (d.kind === 'wait') this.checkpointAt(d.untilMs);
    else if (d.kind === 'after-ack') this.markDue();
    this.armDeadline(now);
    if (this.dueAfterAck && forced) await new Promise<void>((resolve) => setImmediate(resolve));
    // Backpressure: a lagging backup slows the guest instead of growing buffers without bound.
    // Re-checked at every ack and at least every heartbeat interval: what counts as in flight also
    // changes without an ack (a joiner stops acking, a link fails), and a wait that only an ack
    // could end stopped an unprotected primary for good (30-minute soak, seed 61703).
    while (this.ended === null && this.policy.mustThrottle(this.inflightEpochs(), this.inflightBytes())) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.o.config.replication.heartbeatIntervalMs);
        this.ackWaiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /** The LVM hook: the guest's blocking wait ended and it runs next. */
  onWake(): void {
    if (this.ended !== null) return;
    const now = this.nowMs();
    // An epoch with nothing run yet starts running now: after an idle spell the stale deadline
    // ended an empty epoch at the first suspension, and the reply then waited for two acks.
    if (!this.ran) this.policy.runsFrom(now);
    this.ran = true;
    this.armDeadline(now);
  }

  /**
   * A guest that computes for long is interrupted at the next deadline (yield points, imports).
   * With a checkpoint waiting for an ack, that deadline has passed: interrupt it one max interval
   * from now instead (not at every yield point); onSuspended gives the event loop a turn at each
   * such interruption, since acks are only read while the guest is suspended.
   */
  private armDeadline(now: number): void {
    const nextMs = this.dueAfterAck ? now + this.o.config.replication.checkpointMaxIntervalMs : this.policy.nextDeadlineMs();
    this.o.lvm.requestSuspend(this.o.platform.now('monotonic') + BigInt(Math.max(0, Math.round((nextMs - now) * 1e6))));
  }

  /** Operator: checkpoint now (the guest is always suspended when JavaScript runs). */
  triggerCheckpoint(): number {
    if (this.ended !== null || this.frozen) throw new WaterbearError('WB_STALE_VIEW', 'this replica is no longer primary');
    if (this.o.lvm.suspended === null || !this.o.lvm.isQuiescent()) throw new WaterbearError('WB_TIMEOUT', 'the guest is not at a suspension point; try again');
    this.checkpointNow();
    return this.captured;
  }

  /**
   * Operator: drop backup `id` and refuse its joins until `addBackup(id)`. Resolves with the
   * committed view without it (at once when it was not in the view: a joiner just stops).
   */
  async removeBackup(id: string, timeoutMs = SWITCHOVER_TIMEOUT_MS): Promise<View> {
    this.refuseSelf(id, 'remove-backup', `switch over to another replica first, then remove ${id}`);
    this.apply(this.protocol.onRemoveBackup(id));
    await this.waitWhilePrimary(() => !this.protocol.currentView.backups.includes(id), timeoutMs,
      `lost the primary role before a view without ${id} was committed`,
      () => new WaterbearError('WB_TIMEOUT', `${id} is removed (its joins are refused), but no view without it was committed within ${timeoutMs} ms; the primary keeps proposing one`));
    return this.protocol.currentView;
  }

  /** Operator: allow a removed backup to join again. */
  addBackup(id: string): void {
    this.refuseSelf(id, 'add-backup', 'it cannot back itself up');
    this.apply(this.protocol.onAddBackup(id));
  }

  /** An operator action about a backup that names this primary does nothing: say so (WB_BAD_REQUEST) rather than answer ok. */
  private refuseSelf(id: string, action: string, hint: string): void {
    if (id === this.o.self) throw new WaterbearError('WB_BAD_REQUEST', `${action}: ${id} is the primary, not a backup: ${hint}`);
  }

  /**
   * Poll until `done()` while this replica is primary: throws WB_STALE_VIEW (`lost`) if the role
   * ends first, and what `timedOut` returns (after any stepping down it does) past `timeoutMs`.
   */
  private async waitWhilePrimary(done: () => boolean, timeoutMs: number, lost: string, timedOut: () => Error): Promise<void> {
    const deadline = this.nowMs() + timeoutMs;
    while (!done()) {
      if (this.ended !== null) throw new WaterbearError('WB_STALE_VIEW', lost);
      if (this.nowMs() > deadline) throw timedOut();
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * Operator: planned switchover to `target` with no lost output. Freezes the guest right after a
   * final checkpoint, waits until every backup acknowledged it (so all output is released) and
   * the released output has drained to the sockets, then proposes the view with `target` as
   * primary. This replica is then fenced and rejoins as a backup.
   */
  async switchover(target: string, timeoutMs = SWITCHOVER_TIMEOUT_MS): Promise<View> {
    if (this.ended !== null || this.frozen) throw new WaterbearError('WB_STALE_VIEW', 'this replica is no longer primary');
    if (!this.protocol.currentView.backups.includes(target)) {
      throw new WaterbearError('WB_CONFIG_INVALID', `${target} is not a backup of ${formatView(this.protocol.currentView)}`);
    }
    if (this.o.lvm.suspended === null || !this.o.lvm.isQuiescent()) throw new WaterbearError('WB_TIMEOUT', 'the guest is not at a suspension point; try again');
    // Only once the request is valid: the dashboard reads this event to tell the coming view
    // change from a failover, and a refused request must not look like a switchover under way.
    this.emit('switchover-started', target);
    this.checkpointNow();
    this.frozen = true;
    this.o.lvm.stop(); // the guest never runs again here: the final checkpoint is its last state
    const final = this.captured;
    await this.waitWhilePrimary(() => this.protocol.releasedEpoch >= final && this.o.nb.stats().bufferedBytes === 0, timeoutMs,
      'lost the primary role during the switchover', () => {
        this.end({ kind: 'fenced', reason: 'switchover timed out before the backups acknowledged the final checkpoint' });
        return new WaterbearError('WB_TIMEOUT', `switchover to ${target}: backups did not acknowledge epoch ${final} within ${timeoutMs} ms; this replica stepped down and a backup takes over`);
      });
    const actions = this.protocol.onSwitchover(target);
    if (typeof actions === 'string') {
      this.end({ kind: 'fenced', reason: `switchover refused: ${actions}` });
      throw new WaterbearError('WB_VIEW_CONFLICT', `switchover to ${target} refused: ${actions}`);
    }
    const next = actions.find((a) => a.kind === 'propose');
    const committed = new Promise<View>((resolve, reject) => {
      const timer = setTimeout(() => { this.off('ended', onEnd); reject(new WaterbearError('WB_TIMEOUT', 'the switchover view was not committed in time')); }, timeoutMs);
      const onEnd = (): void => { clearTimeout(timer); resolve(next!.kind === 'propose' ? next!.view : this.protocol.currentView); };
      this.once('ended', onEnd);
    });
    this.apply(actions);
    return committed;
  }

  /** A replica asks to be protected. */
  join(from: string): { accepted: boolean; reason: string; removed: boolean } {
    if (this.ended !== null) return { accepted: false, reason: 'this replica is no longer primary', removed: false };
    if (!this.protocol.mayJoin(from)) return { accepted: false, reason: `${from} was removed by an operator; add it back first (add-backup)`, removed: true };
    this.apply(this.protocol.onJoinRequest(from));
    return { accepted: true, reason: '', removed: false };
  }

  /** Stop serving (shutdown, not a failover). */
  stop(): void { this.end({ kind: 'stopped' }); }

  get currentView(): View { return this.protocol.currentView; }
  linkStates(): Array<{ backup: string; acked: number; inflightBytes: number }> {
    return [...this.links.values()].map((l) => ({ backup: l.backup, acked: l.ackedEpoch, inflightBytes: l.inflightBytes }));
  }

  /** Read-only numbers about the running guest, for the dashboard and metrics. */
  guestSnapshot(): PrimaryGuestSnapshot {
    return {
      memoryBytes: this.o.lvm.memory.buffer.byteLength, imageSha256: this.o.lvm.image.imageSha256,
      output: this.o.nb.stats(), io: this.o.platform.ioStats(), extensions: [this.o.nb.name],
    };
  }

  // ---- internals ----

  private anyLinkNeedsFull(): boolean {
    for (const l of this.links.values()) if (l.needsFull) return true;
    return false;
  }

  private anyPrecopyReady(): boolean {
    for (const l of this.links.values()) if (l.precopy?.ready === true) return true;
    return false;
  }

  private inflightEpochs(): number {
    let min = this.captured;
    const backups = this.protocol.currentView.backups;
    // A backup being pre-copied acknowledges nothing until the final checkpoint: waiting for it
    // would stop the guest for the whole copy (or for good, if the final cannot be captured while
    // the guest waits). Its output stays held all the same.
    for (const b of backups) if (this.links.get(b)?.precopy == null) min = Math.min(min, this.protocol.ackedBy(b) ?? 0);
    // A joiner that holds a chain paces the guest too: a busy guest would otherwise outrun it and
    // it would never get close enough to the head to be added (found with pre-copied rejoins).
    // Not before it has one (pre-copy, a full image in flight): that would stop the guest. Nor
    // once it stopped acknowledging (its store fails, it is stalled): a joiner protects nothing
    // yet, and waiting for it stopped the guest of an unprotected primary for good.
    const now = this.nowMs();
    for (const l of this.links.values()) {
      if (backups.includes(l.backup) || l.precopy !== null || l.needsFull) continue;
      if (now - l.lastAckAtMs > this.o.config.replication.heartbeatTimeoutMs) continue;
      const acked = this.protocol.ackedBy(l.backup) ?? 0;
      if (acked > 0) min = Math.min(min, acked);
    }
    return this.captured - min;
  }

  private inflightBytes(): number {
    let max = 0;
    for (const l of this.links.values()) max = Math.max(max, l.inflightBytes);
    return max;
  }

  /** Capture when the guest is (still) suspended at `atMs` (or earlier, if asked for earlier). */
  private checkpointAt(atMs: number): void {
    this.pendingTimer.schedule(atMs, () => {
      if (this.ended !== null || this.o.lvm.suspended === null || !this.o.lvm.isQuiescent()) return;
      if (this.policy.pipelineFull(this.inflightEpochs()) && !this.anyLinkNeedsFull()) this.markDue();
      else this.checkpointNow();
    });
  }

  /**
   * A checkpoint is due and waits for room in the pipeline. The pipeline limit is there to batch,
   * not to gate: if no ack makes room within the max interval, the checkpoint is taken anyway,
   * so held output can never wait on an ack that does not come.
   */
  private markDue(): void {
    this.dueAfterAck = true;
    if (this.dueTimer !== null) return;
    this.dueTimer = setTimeout(() => {
      this.dueTimer = null;
      if (!this.dueAfterAck || this.ended !== null || this.frozen) return;
      if (this.o.lvm.suspended !== null && this.o.lvm.isQuiescent()) this.checkpointNow();
      else this.markDue();
    }, this.o.config.replication.checkpointMaxIntervalMs);
  }

  /** After an acknowledgement: the checkpoint that waited for room in the pipeline is taken now. */
  private takeDueCheckpoint(): void {
    if (!this.dueAfterAck || this.ended !== null || this.frozen) return;
    if (this.policy.pipelineFull(this.inflightEpochs())) return;
    this.dueAfterAck = false;
    if (this.o.lvm.suspended !== null && this.o.lvm.isQuiescent()) this.checkpointNow();
    else this.o.lvm.requestSuspend(0n); // at its next suspension point, which decides again
  }

  private checkpointNow(): void {
    if (this.ended !== null) return;
    this.pendingTimer.cancel();
    this.dueAfterAck = false;
    if (this.dueTimer !== null) { clearTimeout(this.dueTimer); this.dueTimer = null; }
    // A backup without the chain needs a full image: a large guest sends it by pre-copy (the
    // others keep their chain); otherwise start a new chain for everyone.
    this.startPrecopies();
    if (this.anyLinkNeedsFull()) this.o.checkpointer.startNewChain();
    // Close the network buffer's epoch first, so the captured state says "producing epoch+1".
    const epoch = this.o.nb.advanceEpoch();
    const cp = this.o.checkpointer.capture();
    if (cp.epoch !== epoch) throw new Error(`epoch mismatch: network buffer closed ${epoch}, checkpointer captured ${cp.epoch}`);
    this.ran = false;
    this.policy.checkpointed(this.nowMs());
    this.captured = epoch;
    this.stats.checkpoints++;
    this.stats.lastPauseUs = cp.stats.pauseUs;
    this.stats.capturedEpoch = epoch;
    this.stats.capturedPages += cp.pages.length;
    const deltaPages = this.deltaBases?.annotate(cp) ?? 0;
    this.stats.deltaPages += deltaPages;
    const sends: Shipment['sends'] = [];
    let captured: number[] | null = null;
    for (const link of this.links.values()) {
      const p = link.precopy;
      if (p === null) {
        if (cp.full) link.fullCaptured();
        sends.push({ link, cp });
        continue;
      }
      // Pre-copying: this backup has no chain yet; what this epoch changed is sent again later.
      p.noteDirty(captured ??= cp.pages.map((x) => x.index));
      if (p.ready) {
        sends.push({ link, cp: this.precopyFinal(p, cp), precopy: p });
        link.fullCaptured();
      }
    }
    this.ship({ epoch, cp, deltaPages, sends });
    this.apply(this.protocol.onCaptured(epoch));
  }

  /**
   * Encode and send a captured checkpoint, in capture order. A small one goes at once; a large
   * one (or anything queued behind it) is encoded in slices across event-loop turns
   * (encodeCheckpointSliced), so that heartbeats, lease renewals and acks keep flowing while
   * 32 MiB are checksummed and encoded: in one piece that stalled the primary ~340 ms.
   */
  private ship(s: Shipment): void {
    const large = s.sends.some((x) => x.cp.pages.length > ENCODE_SLICE_PAGES) || s.cp.pages.length > ENCODE_SLICE_PAGES;
    if (!large && this.shipping === null) { this.deliver(s, new Map()); return; }
    const pause = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const run = (this.shipping ?? Promise.resolve()).then(async () => {
      if (this.ended !== null) return;
      // Large checkpoints carry no deltas (DELTA_MAX_CHECKPOINT_PAGES): one encoding serves every link.
      const encoded = new Map<CheckpointData, Uint8Array>();
      for (const cp of new Set([s.cp, ...s.sends.map((x) => x.cp)])) {
        if (cp.pages.length <= ENCODE_SLICE_PAGES) continue;
        encoded.set(cp, await encodeCheckpointSliced(cp, pause));
        if (this.ended !== null) return;
      }
      this.deliver(s, encoded);
    }).catch((err: Error) => this.o.log.error({ err: err.message, epoch: s.epoch }, 'encoding a checkpoint failed'));
    this.shipping = run;
    void run.finally(() => { if (this.shipping === run) this.shipping = null; });
  }

  /**
   * Send `s` to its links. A checkpoint with sub-page deltas is encoded per distinct delta floor
   * (a link's last full image), usually one encoding for all; `encoded` holds large ones ready.
   */
  private deliver(s: Shipment, encoded: ReadonlyMap<CheckpointData, Uint8Array>): void {
    const byFloor = new Map<number, Uint8Array>();
    const encode = (cp: CheckpointData, deltasAfter: number | undefined): Uint8Array => {
      const ready = encoded.get(cp);
      if (ready !== undefined) return ready;
      if (cp !== s.cp) return encodeCheckpoint(cp);
      // A floor older than the window excludes no base: such links share one encoding.
      const key = deltasAfter === undefined ? -1 : Math.max(deltasAfter, cp.epoch - DELTA_WINDOW_EPOCHS - 1);
      let bytes = byFloor.get(key);
      if (bytes === undefined) byFloor.set(key, bytes = encodeCheckpoint(cp, { deltasAfter }));
      return bytes;
    };
    let bytes: Uint8Array | null = null;
    for (const { link, cp, precopy } of s.sends) {
      if (this.links.get(link.backup) !== link) continue; // closed or replaced since the capture
      const out = encode(cp, this.deltaBases === null ? undefined : link.deltasAfter);
      if (cp === s.cp) bytes ??= out;
      link.sendCheckpoint(s.epoch, cp.full, out);
      if (precopy === undefined) continue;
      this.o.log.debug({ backup: link.backup, epoch: s.epoch, rounds: precopy.rounds, staged: precopy.pagesSent, finalPages: cp.pages.length, ms: Math.round(performance.now() - precopy.startedAtMs) }, 'pre-copy final checkpoint');
      this.stats.precopies++;
      this.stats.precopyPages += precopy.pagesSent;
    }
    bytes ??= encode(s.cp, undefined);
    this.stats.checkpointBytes += bytes.length;
    this.stats.lastCheckpointBytes = bytes.length;
    this.emit('checkpoint', { epoch: s.epoch, bytes: bytes.length, pauseUs: s.cp.stats.pauseUs, full: s.cp.full, pages: s.cp.pages.length, deltaPages: s.deltaPages });
  }

  private apply(actions: PrimaryAction[]): void {
    for (const a of actions) {
      switch (a.kind) {
        case 'release':
          this.o.nb.release(a.epoch);
          this.emit('released', a.epoch); // the dashboard measures capture-to-release latency
          break;
        case 'passthrough':
          this.o.nb.setPassthrough(a.on);
          this.emit('protection', { protected: !a.on, view: this.protocol.currentView });
          if (a.on) this.o.log.warn({ view: this.protocol.currentView }, 'running UNPROTECTED: no backup in the view; output is released without acknowledgement');
          break;
        case 'propose':
          void this.propose(a.view);
          break;
        case 'fence':
          this.o.log.warn({ reason: a.reason }, 'fenced: stopping the guest');
          this.o.nb.fence();
          this.end({ kind: 'fenced', reason: a.reason });
          break;
        case 'stream-to':
          this.openLink(a.backup);
          break;
        case 'stop-stream':
          this.links.get(a.backup)?.close();
          this.links.delete(a.backup);
          break;
        case 'checkpoint':
          this.checkpointSoon();
          break;
      }
    }
    // From the protocol, not from release actions: unprotected, output leaves as it is captured.
    this.stats.releasedEpoch = this.protocol.releasedEpoch;
    this.wakeAckWaiters();
    // An ack, or a view with fewer backups, may have made room in the pipeline.
    this.takeDueCheckpoint();
    this.reconsiderPendingWait();
  }

  /** After an ack: a held-output wait for the min interval ends once nothing is in flight (EpochPolicy). */
  private reconsiderPendingWait(): void {
    if (!this.pendingTimer.pending || this.ended !== null || this.frozen) return;
    if (this.o.lvm.suspended === null || !this.o.lvm.isQuiescent()) return;
    const d = this.policy.decide(this.nowMs(), this.o.nb.holdsOutputOfCurrentEpoch, this.ran, this.inflightEpochs());
    if (d.kind === 'checkpoint') this.checkpointNow();
  }

  private openLink(backup: string): void {
    this.links.get(backup)?.close();
    this.storeRefusing.delete(backup);
    const member = this.o.config.replicas.find((r) => r.id === backup);
    if (member === undefined) { this.o.log.error({ backup }, 'backup is not in the cluster file'); return; }
    const link = new BackupLink({
      self: this.o.self, backup, address: member.address, credentials: this.o.credentials, view: () => this.protocol.currentView.view,
      imageSha256: this.o.lvm.image.imageSha256, heartbeatIntervalMs: this.o.config.replication.heartbeatIntervalMs,
      heartbeatTimeoutMs: this.o.config.replication.heartbeatTimeoutMs, nowMs: this.nowMs,
    }, {
      ack: (b, view, epoch) => {
        this.o.log.trace({ backup: b, view, epoch }, 'ack');
        this.storeRefusing.delete(b);
        this.apply(this.protocol.onAck(b, view, epoch));
      },
      nack: (b, epoch, code, reason) => {
        this.stats.refusals++;
        this.emit('refused', { backup: b, epoch, code });
        // A backup whose store keeps failing (full or broken disk) answers heartbeats but can
        // acknowledge nothing: all output would stay held until its disk recovers (a backup of
        // the view, or a joiner output is held for), and a joiner would be sent a full image
        // per heartbeat interval. Past the heartbeat timeout it is dropped like a silent one;
        // it asks to join again and is taken back once it can store.
        if (STORE_FAILURE_CODES.has(code)) {
          const since = this.storeRefusing.get(b) ?? this.nowMs();
          this.storeRefusing.set(b, since);
          const forMs = this.nowMs() - since;
          if (forMs > this.o.config.replication.heartbeatTimeoutMs) {
            failed(b, `its checkpoint store refused every checkpoint for ${Math.round(forMs)} ms (${code}: ${reason}); it rejoins once it can store`);
            return;
          }
        }
        // Also after WB_STALE_VIEW: a checkpoint sent in view N that reached a backup already in
        // N+1 must be sent again in the current view, or held output waits for an ack that never
        // comes (found by the chaos harness). Links always carry the current view, and resends
        // are limited to one per heartbeat interval, so a backup in another view cannot cause a storm.
        // A resend inside the limit is deferred, not dropped: a guest throttled on acks takes no
        // checkpoint of its own, so a dropped resend left the backup without the full image it
        // asked for and the primary stalled for good (chaos: fsync errors on a backup's store).
        const now = this.nowMs();
        const interval = this.o.config.replication.heartbeatIntervalMs;
        if (now - this.lastNackResendMs < interval) {
          this.nackResendTimer ??= setTimeout(() => {
            this.nackResendTimer = null;
            this.lastNackResendMs = this.nowMs();
            this.checkpointSoon();
          }, Math.min(interval, Math.max(0, interval - (now - this.lastNackResendMs))));
          return;
        }
        this.lastNackResendMs = now;
        this.o.log.warn({ backup: b, epoch, code, reason }, 'backup refused a checkpoint; sending a full image');
        this.checkpointSoon();
      },
      reopened: (b, reason) => {
        // A backup of the view that lost its stream needs a full image. For a large guest that
        // takes seconds, and its output would be held all along: drop it instead, run
        // unprotected meanwhile, and let it rejoin (pre-copied as a joiner). A backup that
        // never acknowledged anything (cluster start) has no protection to lose yet.
        const large = this.o.lvm.memory.buffer.byteLength >= this.o.config.replication.precopyMinBytes;
        if (large && this.protocol.currentView.backups.includes(b) && (this.protocol.ackedBy(b) ?? 0) > 0) {
          failed(b, `${reason}; a full image of this guest takes a pre-copy, so it rejoins instead`);
          return;
        }
        this.o.log.debug({ backup: b, reason }, 'replication stream reopened; sending a full image');
        this.checkpointSoon();
      },
      failed: (b, reason) => failed(b, reason),
      corrupt: (_b, err) => warnCorrupt(this.refusalWarnings, err),
    });
    const failed = (b: string, reason: string): void => {
      if (this.links.get(b) !== link) return;
      link.close(); // idempotent: a link that failed by itself is closed already
      this.links.delete(b);
      this.failedBackups.add(b);
      this.o.log.warn({ backup: b, reason }, 'backup link failed');
      this.emit('backup-failed', { backup: b, reason });
      this.apply(this.protocol.onBackupFailed(b));
    };
    this.links.set(backup, link);
    this.o.log.debug({ backup, address: member.address }, 'opening replication link');
    link.start();
    this.checkpointSoon();
  }

  /** Links that need a full image of a large guest get it by iterative pre-copy. */
  private startPrecopies(): void {
    const memory = this.o.lvm.memory.buffer.byteLength;
    if (memory < this.o.config.replication.precopyMinBytes) return;
    for (const link of this.links.values()) {
      if (!link.needsFull) continue;
      const p = new Precopy(`${this.o.self}-${randomUUID()}`, memory / CHECKPOINT_PAGE_BYTES);
      link.beginPrecopy(p);
      this.o.log.debug({ backup: link.backup, token: p.token, memoryBytes: memory }, 'pre-copying the full image');
      this.pumpPrecopy(link, p);
    }
  }

  /**
   * Send pre-copy slices, one per event-loop turn (the guest runs in between), as fast as the
   * stream takes them; when the rounds are over, the next checkpoint carries the final delta.
   */
  private pumpPrecopy(link: BackupLink, p: Precopy): void {
    const step = (): void => {
      if (this.ended !== null || link.precopy !== p || this.links.get(link.backup) !== link) return;
      if (!link.precopyWindowOpen) { link.onStaged(step); return; }
      const slice = p.nextSlice(new Uint8Array(this.o.lvm.memory.buffer));
      if (slice === null) { this.checkpointSoon(); return; }
      link.sendPrecopySlice(p, slice);
      setImmediate(step);
    };
    setImmediate(step);
  }

  /**
   * The final checkpoint of a pre-copy, at epoch `cp.epoch`: the same state as `cp` (captured at
   * this same suspension, so its pages are copied now), as a full checkpoint whose pages are what
   * changed since the pre-copy read them; the backup adds the staged pages and switches to the
   * new chain atomically.
   */
  private precopyFinal(p: Precopy, cp: CheckpointData): CheckpointData {
    const { pages } = copyPages(new Uint8Array(this.o.lvm.memory.buffer), p.finalPages());
    return {
      ...cp, full: true, stagedFrom: p.token, pages,
      libos: { ...cp.libos, vfs: { full: true, bytes: this.o.lvm.os.vfs.save() } },
    };
  }

  /** Capture as soon as the guest is suspended (a new link needs its full image). */
  private checkpointSoon(): void {
    if (this.o.lvm.suspended !== null && this.o.lvm.isQuiescent()) setImmediate(() => {
      if (this.ended === null && this.o.lvm.suspended !== null && this.o.lvm.isQuiescent()) this.checkpointNow();
    });
  }

  private async propose(next: View): Promise<void> {
    const current = this.protocol.currentView;
    try {
      const committed = await this.o.coordinator.proposeView(current.view, next);
      this.apply(this.protocol.onViewCommitted(committed));
    } catch (err) {
      this.proposalFailed.warn({ err: (err as Error).message, next });
      this.apply(this.protocol.onProposalFailed(isWaterbearError(err, 'WB_VIEW_CONFLICT')));
      if (isWaterbearError(err, 'WB_VIEW_CONFLICT') || isWaterbearError(err, 'WB_TIMEOUT') || isWaterbearError(err, 'WB_COORD_UNAVAILABLE')) {
        try {
          const v = await this.o.coordinator.readView();
          if (v !== null) this.apply(this.protocol.onViewCommitted(v));
        } catch { /* the watch will tell us */ }
      }
    }
  }

  private async renewLease(): Promise<void> {
    // A primary that held its lease and lost it cannot prove it is still primary (isolated from
    // the coordinator): step down, freeing the service address for the new primary (chaos finding).
    // A lapse shorter than the grace (a Raft leader election) only holds output (the release
    // gate); a longer one means isolation.
    if (this.ended === null && !this.frozen && this.leaseConfirmed && this.o.coordinator.leaseExpired(this.o.self)) {
      this.leaseLostSinceMs ??= this.nowMs();
      const lostMs = this.nowMs() - this.leaseLostSinceMs;
      if (this.protocol.mayStepDown) {
        if (lostMs > STEP_DOWN_AFTER_LEASE_LOSS_MS) { this.apply(this.protocol.onLeaseLost()); return; }
      } else if (!this.holdingSole && lostMs > (this.protocol.currentView.backups.length > 0 ? PARK_AFTER_LEASE_LOSS_MS : STEP_DOWN_AFTER_LEASE_LOSS_MS)) {
        this.holdSole(lostMs);
      }
    }
    // A backup whose link died and whose removal was not committed (the proposal failed or
    // timed out): propose its removal again, or output stays held forever.
    if (this.ended === null && !this.frozen) {
      for (const b of [...this.failedBackups]) {
        if (!this.protocol.currentView.backups.includes(b) || this.links.has(b)) this.failedBackups.delete(b);
        else this.apply(this.protocol.onBackupFailed(b));
      }
      // Settle a timed-out proposal whose joiner has gone (it holds output); retry a failed join.
      this.apply(this.protocol.onTick());
    }
    try {
      await this.o.coordinator.keepAlive(this.o.self);
      this.leaseConfirmed = true;
      this.leaseLostSinceMs = null;
      this.holdingSole = false;
      if (this.o.platform.serviceParked) void this.unparkService();
      this.o.nb.retryGate();
    } catch (err) {
      this.o.log.debug({ err: (err as Error).message }, 'lease keepalive failed');
    }
  }

  /**
   * Lease lost for long while this replica may hold the only copy of the state (a view without
   * backups, or our proposal of one may still commit): keep the state and hold output until the
   * lease returns or a newer view fences us. If the committed view has a backup, that backup may
   * be taking over (we are the isolated one, and our proposal will lose): free the service
   * address for it meanwhile, or it could not bind until the partition heals (chaos finding 2).
   * Parking releases nothing, so it is safe whoever wins; if our view wins, we bind again.
   */
  private holdSole(lostMs: number): void {
    this.holdingSole = true;
    const view = this.protocol.currentView;
    const takeoverPossible = view.backups.length > 0;
    this.o.log.warn({ view }, `coordinator lease lost, but this replica may hold the only copy of the guest state: keeping it and holding output until the lease returns${takeoverPossible ? '; service address freed meanwhile (connections cut) in case a backup takes over' : ''}`);
    if (!takeoverPossible) return;
    const cut = this.o.platform.parkService();
    this.emit('service-parked', { view, connectionsCut: cut, leaseLostMs: lostMs });
  }

  /** The lease is back and we are still primary: bind the service address again (retried each renewal). */
  private async unparkService(): Promise<void> {
    if (this.unparking || this.ended !== null) return;
    this.unparking = true;
    try {
      await this.o.platform.resumeListening();
      // Parked again meanwhile (the lease lapsed again): the platform abandoned the binding.
      if (this.ended === null && !this.o.platform.serviceParked) {
        this.o.log.info({ view: this.protocol.currentView }, 'coordinator lease regained: listening on the service address again');
        this.emit('service-unparked', { view: this.protocol.currentView });
      }
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'cannot bind the service address again yet (retrying at the next lease renewal)');
    } finally {
      this.unparking = false;
    }
  }

  private wakeAckWaiters(): void {
    const ws = this.ackWaiters;
    this.ackWaiters = [];
    for (const w of ws) w();
  }

  private end(e: PrimaryEnd): void {
    if (this.ended !== null) return;
    this.ended = e;
    this.emit('ended', e);
    this.pendingTimer.cancel();
    if (this.dueTimer !== null) clearTimeout(this.dueTimer);
    if (this.nackResendTimer !== null) clearTimeout(this.nackResendTimer);
    if (this.leaseTimer !== null) clearInterval(this.leaseTimer);
    for (const l of this.links.values()) l.close();
    this.links.clear();
    this.o.lvm.stop();
    this.wakeAckWaiters();
    this.endResolve?.(e);
  }
}
