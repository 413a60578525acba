import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { decodeCheckpoint, type DecodeOptions } from '../../checkpoint/format/checkpoint-codec.js';
import { DeltaBases } from '../../checkpoint/format/delta-bases.js';
import { CHECKPOINT_PAGE_BYTES, type CheckpointData } from '../../checkpoint/checkpoint-data.js';
import type { CheckpointStore } from '../../checkpoint/store/checkpoint-store.js';
import { WaterbearError, isWaterbearError } from '../../libos-host/errors.js';
import type { ClusterConfig } from '../config/cluster-config.js';
import { STALL_FACTOR } from '../primary/backup-link.js';
import { chainRecordAfterStore, chainRecordAfterView, type ChainRecord } from '../protocol/chain-record-rules.js';
import { readChainRecord, writeChainRecord } from './chain-record.js';
import { OWN_SUBCHANNEL_OPTIONS } from '../wire/wedged-connection.js';
import type { Coordinator } from '../coord/coordinator.js';
import { RepeatedWarning, RepeatedWarningPerKey, type Logger } from '../log.js';
import { BackupProtocol, type BackupAction } from '../protocol/backup-protocol.js';
import type { View } from '../protocol/view.js';
import { JoinBackoff } from './join-backoff.js';
import {
  REPLICATION_PROTOCOL_VERSION, ReplicaClient, answerRefusal, refusalWarnings, refuseStream,
  type BackupMessage, type RefusalWarnings, type JoinReply, type JoinRequest, type PrecopyMsg, type PrimaryMessage,
} from '../wire/replication-wire.js';
import { peerHost, refusalOf, versionRefusalError, type OrRefused, type Refusal } from '../wire/refused-message.js';

/**
 * Verified checkpoints (and pre-copy pages) waiting for the store, beyond which the backup stops
 * verifying, and so acknowledging from memory, until the store catches up.
 */
export const MAX_UNSTORED_BYTES = 64 * 1024 * 1024;
/** How often a replica outside the view asks the primary to protect it. */
export const JOIN_RETRY_INTERVAL_MS = 500;

export interface BackupDriverOptions {
  self: string;
  /** This replica's data folder (holds the chain record next to the store). */
  dataDir: string;
  config: ClusterConfig;
  store: CheckpointStore;
  coordinator: Coordinator;
  credentials: grpc.ChannelCredentials;
  log: Logger;
  nowMs?: () => number;
}

interface Assembly { epoch: number; full: boolean; chunks: Uint8Array[]; received: number }

/** A whole checkpoint off the stream, waiting to be applied. */
interface Received {
  kind: 'checkpoint';
  call: grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>;
  from: string;
  view: number;
  epoch: number;
  full: boolean;
  bytes: Uint8Array;
}

/** What a join request got (the 'join-answer' event): `answered` false when the primary could not be reached. */
export interface JoinAnswer { primary: string; accepted: boolean; reason: string; answered: boolean; removed: boolean }

/** A checkpoint that decoded and that the protocol accepted, waiting for the store. */
interface Verified { kind: 'verified'; r: Received; cp: CheckpointData; ackedFromMemory: boolean }

/** Pre-copy pages off the stream, waiting to be staged (in order with the checkpoints). */
interface ReceivedStage {
  kind: 'stage';
  call: grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>;
  view: number;
  msg: PrecopyMsg;
}

/**
 * The backup's side: accepts the replication stream of the current view's primary, applies each
 * checkpoint atomically to the LMDB store and acknowledges it (after it is durable, or once it
 * is verified in memory with ackAfter: memory), watches the primary's heartbeats, proposes a
 * takeover when the primary is silent and its lease has lapsed, and asks to join when it is not
 * in the view. Emits 'promote' (view, epoch) when this replica must become primary; 'applied'
 * ({ epoch, full, bytes }) per checkpoint stored, 'staged' ({ token, pages }) per batch of
 * pre-copy pages staged, 'join-answer' (JoinAnswer) per join request, and 'role-changed' when
 * its role (or whether an operator removed it) changed.
 */
export class BackupDriver extends EventEmitter {
  readonly protocol: BackupProtocol;
  private readonly nowMs: () => number;
  /** Failed proposals repeat every tick while the coordinator is down: warn at most every few seconds. */
  private readonly proposalFailed: RepeatedWarning;
  /** One per refusal code: a full disk refuses every checkpoint, dozens a second, for as long as it lasts. */
  private readonly refusals: RepeatedWarningPerKey;
  private readonly stagingFailures: RepeatedWarningPerKey;
  private readonly joinBackoff = new JoinBackoff();
  private lastHeardMs: number;
  private lastCheckMs: number;
  private watchdog: NodeJS.Timeout | null = null;
  private joinTimer: NodeJS.Timeout | null = null;
  /** The primary that last refused this replica's join because an operator removed it, or null. */
  private removedBy: string | null = null;
  /** Role and removal last announced ('role-changed'). */
  private announcedRole = '';
  private readonly streams = new Set<grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>>();
  /** Checkpoints and pre-copy pages received and not yet verified, in arrival order. */
  private received: Array<Received | ReceivedStage> = [];
  private verifyScheduled = false;
  /** Store failures so far: a batch stops storing checkpoints after one (see storeFailed). */
  private storeFailures = 0;
  /** Promoting: the store stage writes every checkpoint already acknowledged, although stopped. */
  private finishStore = false;
  /** Verified checkpoints and pre-copy pages waiting for the store, in arrival order. */
  private toStore: Array<Verified | ReceivedStage> = [];
  /** A pre-copy whose staging failed: its later pages and its final checkpoint are refused. */
  private brokenStaging: string | null = null;
  /** Resolves when the current store batch is written (or failed); null when idle. */
  private draining: Promise<void> | null = null;
  /** When the last store batch started (ms, nowMs) and the timer holding back the next one. */
  private lastStoreAtMs = -Infinity;
  private storeTimer: NodeJS.Timeout | null = null;
  private checkingLease = false;
  private stopped = false;
  private unwatch: (() => void) | null = null;
  /** The chain record on disk (null: none). */
  private recorded: ChainRecord | null;
  /** Recent page versions of the chain being received, for the primary's sub-page deltas. */
  private readonly deltaBases = new DeltaBases();
  private readonly decodeOptions: DecodeOptions = { deltaBase: (index, epoch) => this.deltaBases.base(index, epoch) };
  /** Peers of another replication protocol version (warned about once each: they retry every heartbeat interval), or that sent corrupt messages (once per kind and minute). */
  private readonly refusalWarnings: RefusalWarnings;

  constructor(private readonly o: BackupDriverOptions, view: View | null) {
    super();
    this.nowMs = o.nowMs ?? (() => performance.now());
    this.proposalFailed = new RepeatedWarning(o.log, 'takeover proposal failed', this.nowMs);
    this.refusals = new RepeatedWarningPerKey(o.log, 'checkpoint refused', this.nowMs);
    this.stagingFailures = new RepeatedWarningPerKey(o.log, 'staging pre-copy pages failed', this.nowMs);
    this.refusalWarnings = refusalWarnings(o.log, this.nowMs);
    this.lastHeardMs = this.nowMs();
    this.lastCheckMs = this.lastHeardMs;
    const chain = readChainRecord(o.dataDir);
    this.recorded = chain;
    this.protocol = new BackupProtocol(o.self, null, chain === null ? undefined : { durable: o.store.latestEpoch(), chainPrimary: chain.primary, chainView: chain.view });
    if (view !== null) queueMicrotask(() => this.onViewCommitted(view));
  }

  start(): void {
    this.unwatch = this.o.coordinator.watchViews((v) => this.onViewCommitted(v));
    this.watchdog = setInterval(() => this.checkPrimary(), this.o.config.replication.heartbeatIntervalMs);
  }

  stop(): void {
    this.stopped = true;
    // A promotion stores what is held back at once (finishStore); otherwise it is dropped with the role.
    if (this.storeTimer !== null) { clearTimeout(this.storeTimer); this.storeTimer = null; }
    this.unwatch?.();
    if (this.watchdog !== null) clearInterval(this.watchdog);
    if (this.joinTimer !== null) clearInterval(this.joinTimer);
    for (const call of this.streams) call.end();
    this.streams.clear();
  }

  get role(): string { return this.protocol.role; }
  /** Out of the view, and the current primary refuses its joins: an operator removed it. */
  get removedByOperator(): boolean {
    const v = this.protocol.currentView;
    return this.removedBy !== null && v !== null && v.primary === this.removedBy && !v.backups.includes(this.o.self);
  }
  get durableEpoch(): number { return this.protocol.durableEpoch; }

  /**
   * gRPC handler for Replicate. Streams coexist (each with its own chunk assembly): a stale or
   * rogue peer's stream cannot cut the real primary's; views and the primary id decide what counts.
   */
  handleStream(call: grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>): void {
    if (this.stopped) { refuseStream(call, grpc.status.FAILED_PRECONDITION, `${this.o.self} is no longer a backup`); return; }
    this.o.log.debug('replication stream opened');
    this.streams.add(call);
    const assembly: { current: Assembly | null } = { current: null };
    let refused = false;
    call.on('data', (m: OrRefused<PrimaryMessage>) => {
      // Nothing after a refused message is read (the stream ends with the refusal): a corrupt
      // chunk leaves its checkpoint incomplete, never assembled from the chunks around it.
      if (refused) return;
      const refusal = refusalOf(m);
      if (refusal === null) { this.onMessage(call, m as PrimaryMessage, assembly); return; }
      refused = true;
      this.refuseMessage(call, refusal);
    });
    call.on('error', () => { this.streams.delete(call); });
    call.on('end', () => { this.streams.delete(call); call.end(); });
  }

  /** A primary that speaks another protocol version, or sent a corrupt message: tell it why and what to do, log it (rate-limited per peer), end the stream. */
  private refuseMessage(call: grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>, refusal: Refusal): void {
    this.streams.delete(call);
    const status = answerRefusal(this.o.self, refusal, peerHost(call), this.refusalWarnings);
    refuseStream(call, status.code, status.details, status.metadata);
  }

  private send(call: grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>, view: number, body: Omit<BackupMessage, 'protocolVersion' | 'view' | 'backupId'>): void {
    if (call.destroyed || call.writableEnded) return;
    call.write({ protocolVersion: REPLICATION_PROTOCOL_VERSION, view, backupId: this.o.self, ...body });
  }

  private onMessage(call: grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>, m: PrimaryMessage, assembly: { current: Assembly | null }): void {
    if (this.stopped) return;
    const view = this.protocol.currentView;
    // Views fence: only the primary of our current view counts as "heard".
    if (view !== null && m.view === view.view && m.primaryId === view.primary) this.lastHeardMs = this.nowMs();
    if (m.heartbeat != null) {
      this.send(call, view?.view ?? 0, { heartbeat: { sentAtMs: Math.round(this.nowMs()), epoch: this.protocol.durableEpoch } });
      return;
    }
    if (m.precopy != null) {
      if (!this.protocol.mayStage(m.primaryId, m.view)) return; // not our primary: the final checkpoint will be nacked
      this.received.push({ kind: 'stage', call, view: m.view, msg: m.precopy });
      this.scheduleDrain();
      return;
    }
    if (m.checkpoint == null) return;
    const c = m.checkpoint;
    if (c.chunkIndex === 0) assembly.current = { epoch: c.epoch, full: c.full, chunks: [], received: 0 };
    const a = assembly.current;
    if (a === null || a.epoch !== c.epoch || c.chunkIndex !== a.received || c.chunkCount < 1) {
      assembly.current = null;
      this.send(call, m.view, { nack: { epoch: c.epoch, code: 'WB_CHECKPOINT_TRUNCATED', reason: `chunk ${c.chunkIndex} of checkpoint ${c.epoch} arrived out of order` } });
      return;
    }
    a.chunks.push(c.data);
    a.received++;
    if (a.received < c.chunkCount) return;
    assembly.current = null;
    const bytes = a.chunks.length === 1 ? a.chunks[0] : Buffer.concat(a.chunks);
    this.received.push({ kind: 'checkpoint', call, from: m.primaryId, view: m.view, epoch: a.epoch, full: a.full, bytes });
    this.scheduleDrain();
  }

  /**
   * Two stages, both in arrival order. Verify (at once, per event-loop turn): decode and check
   * each checkpoint against the protocol, and with ackAfter: memory acknowledge it right there.
   * Store (one batch at a time): everything verified while the previous batch was being written
   * goes into ONE transaction (group commit), so a backup that falls behind catches up with one
   * fdatasync instead of one per epoch. The stages are separate so that an acknowledgement from
   * memory never waits for the fdatasync of an earlier epoch (it did: that made ackAfter: memory
   * barely faster than disk).
   */
  private scheduleDrain(): void {
    if (this.verifyScheduled) return;
    this.verifyScheduled = true;
    setImmediate(() => {
      this.verifyScheduled = false;
      if (this.stopped) return;
      this.verify();
      this.scheduleStore();
    });
  }

  private verify(): void {
    const memory = this.o.config.replication.ackAfter === 'memory';
    // Bounded: acknowledgements from memory must not outrun a slow disk without limit (the
    // primary paces itself on acks); the rest waits in `received` for the store to catch up.
    let unstored = this.unstoredBytes();
    while (this.received.length > 0 && unstored < MAX_UNSTORED_BYTES) {
      const item = this.received.shift()!;
      if (item.kind === 'stage') { this.toStore.push(item); unstored += item.msg.data.length; continue; }
      const actions = this.protocol.onCheckpoint(item.from, item.view, item.epoch, item.full);
      this.o.log.debug({ from: item.from, view: item.view, epoch: item.epoch, full: item.full, bytes: item.bytes.length, actions: actions.map((x) => x.kind) }, 'checkpoint received');
      for (const action of actions) {
        if (action.kind === 'nack') { this.send(item.call, action.view, { nack: { epoch: action.epoch, code: action.code, reason: action.reason } }); continue; }
        if (action.kind !== 'apply') continue;
        let cp: CheckpointData;
        try {
          cp = decodeCheckpoint(item.bytes, this.decodeOptions); // verified: version, checksums (of whole pages)
        } catch (err) {
          this.refuse(item, err);
          continue;
        }
        this.deltaBases.record(cp);
        // Verified in memory: with ackAfter memory, acknowledge before writing.
        if (memory) this.reply(item.call, this.protocol.onApplied(item.epoch, item.full));
        this.toStore.push({ kind: 'verified', r: item, cp, ackedFromMemory: memory });
        unstored += item.bytes.length;
      }
    }
  }

  private scheduleStore(): void {
    if (this.draining !== null || this.toStore.length === 0 || this.halted()) return;
    const holdMs = this.storeHoldMs();
    if (holdMs > 0) {
      this.storeTimer ??= setTimeout(() => { this.storeTimer = null; this.scheduleStore(); }, holdMs);
      return;
    }
    this.lastStoreAtMs = this.nowMs();
    this.draining = this.store().catch((err: Error) => this.o.log.error({ err: err.message }, 'applying checkpoints failed'))
      .finally(() => {
        this.draining = null;
        if (this.received.length > 0 && !this.stopped) this.scheduleDrain();
        this.scheduleStore();
      });
  }

  /**
   * How long the next store batch waits; 0: store now. With ackAfter: memory the store writes at
   * most every replication.memoryStoreInterval: checkpoints already acknowledged wait and go in
   * together, so the per-transaction cost (LMDB work on this thread, the head record, an
   * fdatasync) is paid once per interval instead of once per epoch, and a page rewritten by
   * several of them is written once. Pre-copy pages and a promotion's final store are not held back.
   */
  private storeHoldMs(): number {
    if (this.o.config.replication.ackAfter !== 'memory' || this.finishStore) return 0;
    if (this.toStore.some((x) => x.kind !== 'verified' || !x.ackedFromMemory)) return 0;
    return Math.max(0, this.lastStoreAtMs + this.o.config.replication.memoryStoreIntervalMs - this.nowMs());
  }

  /** Bytes verified (or pre-copied) and not yet written. */
  private unstoredBytes(): number {
    let n = 0;
    for (const x of this.toStore) n += x.kind === 'verified' ? x.r.bytes.length : x.msg.data.length;
    return n;
  }

  /** Stopped, and not finishing the store for a promotion. */
  private halted(): boolean { return this.stopped && !this.finishStore; }

  private async store(): Promise<void> {
    const batch = this.toStore.splice(0);
    const failures = this.storeFailures;
    // In arrival order: consecutive checkpoints form one group commit; staged pages go between.
    let group: Verified[] = [];
    for (let i = 0; i < batch.length; i++) {
      if (this.halted()) return;
      const item = batch[i];
      if (item.kind === 'verified') {
        // After a failure, what follows builds on what was not stored (see storeFailed).
        if (this.storeFailures === failures) group.push(item);
        continue;
      }
      if (this.stopped) continue; // promoting: only checkpoints already acknowledged matter
      await this.storeCheckpoints(group);
      group = [];
      // Consecutive pages of one pre-copy are staged in one transaction (one fdatasync).
      const stages = [item];
      for (let n = batch[i + 1]; n?.kind === 'stage' && !n.msg.start && n.msg.token === item.msg.token; n = batch[i + 1]) { stages.push(n); i++; }
      await this.stage(stages);
    }
    if (!this.halted()) await this.storeCheckpoints(group);
  }

  /**
   * Stage pre-copy pages outside the chain. A failure breaks that pre-copy for good (a final
   * checkpoint over a staging area with a hole would be a wrong image): the primary is told and
   * starts over with a new one.
   */
  private async stage(rs: ReceivedStage[]): Promise<void> {
    const r = rs[0];
    const m = r.msg;
    if (m.start) this.brokenStaging = null;
    else if (this.brokenStaging === m.token) return;
    try {
      const pages = rs.flatMap(({ msg }) => {
        if (msg.indices.length * CHECKPOINT_PAGE_BYTES !== msg.data.length || msg.crc32c.length !== msg.indices.length) {
          throw new WaterbearError('WB_PROTOCOL', `pre-copy ${msg.token}: ${msg.indices.length} pages but ${msg.data.length} bytes and ${msg.crc32c.length} checksums`);
        }
        return msg.indices.map((index, k) => ({ index, crc32c: msg.crc32c[k], data: msg.data.subarray(k * CHECKPOINT_PAGE_BYTES, (k + 1) * CHECKPOINT_PAGE_BYTES) }));
      });
      if (m.start) await this.o.store.beginStagingAsync(m.token);
      await this.o.store.stagePagesAsync(m.token, pages);
      for (const x of rs) this.send(x.call, x.view, { staged: { token: x.msg.token, pages: x.msg.indices.length } });
      this.emit('staged', { token: m.token, pages: pages.length });
    } catch (err) {
      this.brokenStaging = m.token;
      const code = storeErrorCode(err);
      this.noteStoreFailure(code);
      this.stagingFailures.warn(code, { token: m.token, code, err: (err as Error).message });
      this.send(r.call, r.view, { nack: { epoch: 0, code, reason: `pre-copy ${m.token} could not be staged: ${(err as Error).message}` } });
    }
  }

  private async storeCheckpoints(group: Verified[]): Promise<void> {
    if (this.halted() || group.length === 0) return;
    // Checked here, not when verified: the staging it completes may have failed since.
    const broken = group.findIndex((v) => v.cp.stagedFrom !== undefined && v.cp.stagedFrom === this.brokenStaging);
    if (broken >= 0) {
      await this.storeCheckpoints(group.slice(0, broken));
      const v = group[broken];
      this.storeFailed(v, new WaterbearError('WB_CHECKPOINT_CORRUPT', `checkpoint ${v.cp.epoch} completes pre-copy ${v.cp.stagedFrom}, whose staging failed; send a full image`));
      return;
    }
    // The write and its fdatasync run off this thread: the stream keeps being read meanwhile,
    // and what arrives forms the next batch.
    try {
      await this.o.store.commitBatchAsync(group.map((x) => x.cp));
      for (const v of group) this.stored(v);
    } catch (err) {
      if (group.length === 1) { this.storeFailed(group[0], err); return; }
      // Find the one that fails: the ones before it are stored and acknowledged.
      for (const v of group) {
        try {
          await this.o.store.commitBatchAsync([v.cp]);
          this.stored(v);
        } catch (err1) {
          this.storeFailed(v, err1);
          return;
        }
      }
    }
  }

  private onViewCommitted(v: View): void {
    this.apply(this.protocol.onViewCommitted(v));
    if (!this.stopped) this.record(chainRecordAfterView(this.recorded, v, this.protocol.chainOf));
  }

  private record(next: ChainRecord | null): void {
    if (next === null) return;
    try {
      writeChainRecord(this.o.dataDir, next);
      this.recorded = next;
    } catch (err) {
      // The old record stays: it can only stop a takeover after a whole-cluster restart.
      this.o.log.warn({ err: (err as Error).message, dataDir: this.o.dataDir },
        'cannot update the chain record (chain.json): replication goes on, nothing acknowledged is lost; until it is written, this replica may not take over after a restart of the whole cluster. Free space or fix permissions in the data folder');
    }
  }

  /** Resolves when the store stage has written everything queued. */
  private async storeIdle(): Promise<void> {
    this.scheduleStore();
    while (this.draining !== null) await this.draining;
  }

  /** A full or failing disk: wait before asking to join again (see JoinBackoff). */
  private noteStoreFailure(code: string): void {
    if (code === 'WB_STORE_FULL' || code === 'WB_STORE_IO') this.joinBackoff.failed(this.nowMs());
  }

  /** `v` is in the store. */
  private stored(v: Verified): void {
    const { r } = v;
    this.joinBackoff.stored();
    if (!v.ackedFromMemory) this.reply(r.call, this.protocol.onApplied(r.epoch, r.full));
    // Written after the commit: a stale record only ever stops a takeover, never allows a wrong one.
    this.record(chainRecordAfterStore(this.recorded, r.from, r.view));
    this.emit('applied', { epoch: r.epoch, full: r.full, bytes: r.bytes.length });
  }

  /** `r` could not be decoded or stored: nothing of it (or what follows it) is, and the primary is told. */
  private refuse(r: Received, err: unknown): void {
    const code = storeErrorCode(err);
    this.noteStoreFailure(code);
    this.refusals.warn(code, { epoch: r.epoch, code, err: (err as Error).message });
    this.reply(r.call, this.protocol.onApplyFailed(r.epoch, code, (err as Error).message));
  }

  /**
   * `v` could not be stored. What was verified after it builds on it (or, if full, was dropped
   * from the protocol's pending list by the refusal): none of it is stored.
   */
  private storeFailed(v: Verified, err: unknown): void {
    this.storeFailures++;
    this.toStore = this.toStore.filter((x) => x.kind === 'stage');
    if (!v.ackedFromMemory) { this.refuse(v.r, err); return; }
    const r = v.r;
    // Already acknowledged from memory, and the store cannot hold it: this replica's state is now
    // older than what clients may have seen, so it must never take over with it. The next
    // incremental checkpoint is refused, and the primary sends a full image.
    this.o.log.error({ epoch: r.epoch, err: (err as Error).message }, 'an acknowledged checkpoint could not be stored: this replica cannot take over until it stores a full image');
    this.protocol.onStoreLost();
  }

  private reply(call: grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>, actions: BackupAction[]): void {
    for (const a of actions) {
      if (a.kind === 'ack') this.send(call, a.view, { ack: { epoch: a.epoch } });
      else if (a.kind === 'nack') this.send(call, a.view, { nack: { epoch: a.epoch, code: a.code, reason: a.reason } });
    }
  }

  private apply(actions: BackupAction[]): void {
    for (const a of actions) {
      switch (a.kind) {
        case 'propose': void this.propose(a.view); break;
        case 'promote': {
          this.o.log.warn({ view: a.view, epoch: a.epoch }, 'promoted: restoring the latest acknowledged checkpoint');
          this.finishStore = true;
          this.stop();
          // Checkpoints acknowledged from memory may still wait for the store stage: the store
          // must hold them before the restore reads it.
          void this.storeIdle().then(() => { this.emit('promote', a.view, this.o.store.latestEpoch()); });
          break;
        }
        case 'join': this.startJoining(a.primary); break;
        case 'demote': this.o.log.warn({ reason: a.reason }, 'cannot act in this view'); break;
        default: break; // ack/nack/apply happen on the stream
      }
    }
    const v = this.protocol.currentView;
    if (v !== null && v.backups.includes(this.o.self) && this.joinTimer !== null) { clearInterval(this.joinTimer); this.joinTimer = null; }
    this.announceRole();
  }

  /** 'role-changed' when the role or the removal changed (a joiner's steps can be shorter than any poll). */
  private announceRole(): void {
    const now = `${this.role}${this.removedByOperator ? ' removed' : ''}`;
    if (now === this.announcedRole) return;
    this.announcedRole = now;
    this.emit('role-changed');
  }

  /** Heartbeat watchdog: a silent primary whose coordinator lease lapsed is presumed dead. */
  private checkPrimary(): void {
    const now = this.nowMs();
    // Our own stall (see BackupLink): grant the primary the time we were not listening.
    if (now - this.lastCheckMs > STALL_FACTOR * this.o.config.replication.heartbeatIntervalMs) this.lastHeardMs = Math.max(this.lastHeardMs, now - this.o.config.replication.heartbeatIntervalMs);
    this.lastCheckMs = now;
    const v = this.protocol.currentView;
    if (this.stopped || v === null || !v.backups.includes(this.o.self) || this.checkingLease) return;
    if (this.nowMs() - this.lastHeardMs <= this.o.config.replication.heartbeatTimeoutMs) return;
    this.checkingLease = true;
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), this.o.config.replication.heartbeatTimeoutMs * 10);
    this.o.coordinator.awaitLeaseExpiry(v.primary, ctrl.signal).then(() => {
      // Still silent and still the same view: take over.
      const now = this.protocol.currentView;
      if (!this.stopped && now !== null && now.view === v.view && this.nowMs() - this.lastHeardMs > this.o.config.replication.heartbeatTimeoutMs) {
        const actions = this.protocol.onPrimaryDead();
        if (actions.length > 0) this.o.log.warn({ primary: v.primary, view: v.view }, 'primary silent and its lease lapsed: proposing a takeover');
        this.apply(actions);
      }
    }, () => { /* lease still held, or coordinator unreachable: check again next tick */ }).finally(() => {
      clearTimeout(timer);
      this.checkingLease = false;
    });
  }

  private async propose(next: View): Promise<void> {
    const v = this.protocol.currentView;
    if (v === null) return;
    try {
      const committed = await this.o.coordinator.proposeView(v.view, next);
      this.onViewCommitted(committed);
    } catch (err) {
      this.proposalFailed.warn({ err: (err as Error).message });
      this.apply(this.protocol.onProposalFailed());
      try {
        const cur = await this.o.coordinator.readView();
        if (cur !== null) this.onViewCommitted(cur);
      } catch { /* the watch will tell */ }
    }
  }

  /** Ask the primary to protect this replica, until the view includes it. */
  private startJoining(primary: string): void {
    if (this.joinTimer !== null) clearInterval(this.joinTimer);
    const member = this.o.config.replicas.find((r) => r.id === primary);
    const self = this.o.config.replicas.find((r) => r.id === this.o.self);
    if (member === undefined || self === undefined) return;
    const ask = (): void => {
      const v = this.protocol.currentView;
      if (this.stopped || v === null || v.backups.includes(this.o.self) || v.primary !== primary) return;
      if (!this.joinBackoff.mayAsk(this.nowMs())) return;
      // Its own connection, closed with the client after each answer: from grpc-js's shared pool
      // every retry got the connection of a request still open, so one wedged connection (flipped
      // bits stalling HTTP/2 flow control) kept the replica out for good (docs/chaos.md, 13).
      const client = new ReplicaClient(member.address, this.o.credentials, OWN_SUBCHANNEL_OPTIONS) as unknown as grpc.Client & {
        join(req: JoinRequest, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, r?: JoinReply) => void): void;
      };
      client.join({ protocolVersion: REPLICATION_PROTOCOL_VERSION, replicaId: this.o.self, replicationAddress: self.address },
        { deadline: Date.now() + 2000 }, (err, reply) => {
          client.close();
          const refused = versionRefusalError(err);
          if (refused !== null) this.refusalWarnings.version.warn(`join ${primary} ${refused.message}`, { peer: primary, err: refused.message });
          else if (err !== null) this.o.log.debug({ err: err.message }, 'join request failed');
          else if (reply?.accepted !== true) this.o.log.debug({ reason: reply?.reason }, 'join refused');
          else this.lastHeardMs = this.nowMs();
          if (err === null) this.removedBy = reply?.removed === true ? primary : null;
          const answer: JoinAnswer = err !== null ? { primary, accepted: false, reason: err.details || err.message, answered: false, removed: false }
            : { primary, accepted: reply?.accepted === true, reason: reply?.reason ?? '', answered: true, removed: reply?.removed === true };
          this.emit('join-answer', answer);
          this.announceRole();
        });
    };
    ask();
    this.joinTimer = setInterval(ask, JOIN_RETRY_INTERVAL_MS);
  }
}

/** The stable code to report for a failure to decode or store: a WaterbearError's own, else WB_STORE_IO. */
function storeErrorCode(err: unknown): string {
  return isWaterbearError(err) ? err.code : 'WB_STORE_IO';
}
