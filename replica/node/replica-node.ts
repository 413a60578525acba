import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RestoreImage } from '../../checkpoint/restore-image.js';
import { CheckpointStore, type StoreFault } from '../../checkpoint/store/checkpoint-store.js';
import { WaterbearError, isWaterbearError } from '../../libos-host/errors.js';
import type { LvmHooks, MemoryContents } from '../../libos-host/runtime/lvm.js';
import { BackupDriver } from '../backup/backup-driver.js';
import { findMember, type ClusterConfig, type ReplicaConfig } from '../config/cluster-config.js';
import { ensureDataDir } from '../config/data-dir.js';
import type { Coordinator } from '../coord/coordinator.js';
import type { MonotonicClock } from '../coord/lease.js';
import { createLogger, type Logger } from '../log.js';
import { PrimaryDriver, type PrimaryEnd, type PrimaryGuestSnapshot, type PrimaryStats } from '../primary/primary-driver.js';
import { formatView, type View } from '../protocol/view.js';
import { channelCredentials, serverCredentials } from '../wire/credentials.js';
import { bindWithReceiveWindow } from '../wire/receive-window.js';
import {
  MAX_MESSAGE_BYTES, answerRefusal, refusalWarnings, refuseStream, replicaService,
  type BackupMessage, type RefusalWarnings, type JoinReply, type JoinRequest, type PrimaryMessage, type StatusReply,
} from '../wire/replication-wire.js';
import { peerHost, refusalOf, type OrRefused } from '../wire/refused-message.js';
import { startPrimaryLvm } from './primary-lvm.js';
import { readGuestModule } from '../config/guest-module.js';

/** Marker written when this replica started the guest fresh: it must never do so twice. */
const STARTED_MARKER = 'started-fresh';
/** How often a replica without a view retries reading or creating one. */
export const VIEW_RETRY_INTERVAL_MS = 200;

/** Builds the coordinator for this replica; the embedded Raft registers its service on `server`. */
export type CoordinatorFactory = (server: grpc.Server) => Promise<Coordinator>;

/** `removed`: out of the view by an operator's remove-backup; its joins are refused until add-backup. */
export type NodeRole = 'starting' | 'primary' | 'backup' | 'joining' | 'removed' | 'promoting' | 'idle' | 'stopped';

/** Test and chaos hooks of a replica (WATERBEAR_CHAOS_CONTROL, replica/chaos/chaos-control.ts); none in production. */
export interface ReplicaNodeOptions {
  /** The clock of heartbeats, watchdogs and the epoch policy (default performance.now). */
  clock?: MonotonicClock;
  /** Simulated store faults (see CheckpointStoreOptions.faultHook). */
  storeFaultHook?: () => StoreFault | null;
  /**
   * `waterbear join`: only ever join a running cluster. With no view yet, start() fails with
   * WB_JOIN_FAILED instead of creating view 1 (which could make this replica primary of an
   * empty guest).
   */
  joinOnly?: boolean;
}

/** One replica process: gRPC server, coordinator client, checkpoint store, and its current role. */
export class ReplicaNode extends EventEmitter implements ReplicaAdmin {
  readonly member: ReplicaConfig;
  readonly log: Logger;
  private readonly server: grpc.Server;
  /** Peers of another replication protocol version (warned about once each), or whose join or status request was corrupt (once per kind and minute). */
  private readonly refusalWarnings: RefusalWarnings;
  private coordinator: Coordinator | null = null;
  private store: CheckpointStore | null = null;
  private primary: PrimaryDriver | null = null;
  private backup: BackupDriver | null = null;
  private stopped = false;
  private promoting = false;
  /** Timestamps (performance.now) of the last failover phases, for status and benchmarks. */
  readonly timings: Record<string, number> = {};
  /** Extra JSON-able numbers for the Status RPC's status_json (the dashboard sets it), or null. */
  statusExtras: (() => Record<string, unknown>) | null = null;

  constructor(readonly config: ClusterConfig, readonly self: string, private readonly coordinatorFactory: CoordinatorFactory, log?: Logger, private readonly options: ReplicaNodeOptions = {}) {
    super();
    const { member, witness } = findMember(config, self);
    if (witness) throw new Error(`${self} is a witness: run \`waterbear witness\` for it`);
    this.member = member;
    this.log = log ?? createLogger('replica', { replica: self });
    this.refusalWarnings = refusalWarnings(this.log, this.clockOption().nowMs ?? (() => performance.now()));
    this.server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES * 2, 'grpc.max_send_message_length': MAX_MESSAGE_BYTES * 2 });
  }

  get role(): NodeRole {
    if (this.stopped) return 'stopped';
    if (this.primary !== null) return 'primary';
    if (this.promoting) return 'promoting';
    if (this.backup !== null) {
      if (this.backup.role === 'joining') return this.backup.removedByOperator ? 'removed' : 'joining';
      return this.backup.role === 'idle' ? 'idle' : 'backup';
    }
    return 'starting';
  }

  /** Start serving: bind the gRPC server, join the coordinator, take the role the view gives. */
  async start(): Promise<void> {
    readGuestModule(this.config); // a guest that cannot be read is a config error now, not at promotion
    ensureDataDir(this.member.dataDir, `the dataDir of replica ${this.self}`);
    this.server.addService(replicaService, {
      replicate: (call: grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>) => {
        if (this.backup === null) { refuseStream(call, grpc.status.FAILED_PRECONDITION, `${this.self} is ${this.role}, not a backup`); return; }
        this.backup.handleStream(call);
      },
      join: (call: grpc.ServerUnaryCall<OrRefused<JoinRequest>, JoinReply>, cb: grpc.sendUnaryData<JoinReply>) => {
        if (this.refused(call, cb)) return;
        const v = this.primary?.currentView;
        if (this.primary === null || v === undefined) { cb(null, { accepted: false, view: 0, primaryId: '', reason: `${this.self} is not the primary` }); return; }
        const request = call.request as JoinRequest;
        if (!this.config.replicas.some((r) => r.id === request.replicaId)) { cb(null, { accepted: false, view: v.view, primaryId: this.self, reason: 'not a replica of this cluster' }); return; }
        const r = this.primary.join(request.replicaId);
        cb(null, { accepted: r.accepted, view: v.view, primaryId: this.self, reason: r.reason, removed: r.removed });
      },
      status: (call: grpc.ServerUnaryCall<unknown, StatusReply>, cb: grpc.sendUnaryData<StatusReply>) => {
        if (!this.refused(call, cb)) cb(null, this.statusReply());
      },
    });
    this.coordinator = await this.coordinatorFactory(this.server);
    // Its store failed (a full disk): this replica can neither vote nor hold a lease again. The
    // process should exit (serveReplica does) so its supervisor restarts it once the fault is gone.
    this.coordinator.onFatal((err) => { if (!this.stopped) this.emit('coordinator-failed', err); });
    const { windowRaised } = await bindWithReceiveWindow(this.server, this.member.address, serverCredentials(this.config.tls));
    if (!windowRaised) this.log.warn('could not raise the HTTP/2 receive window (another @grpc/grpc-js than 1.14?): replication runs with the 64 KiB default, slower');
    this.store = CheckpointStore.open(join(this.member.dataDir, 'store'), this.options.storeFaultHook !== undefined ? { faultHook: this.options.storeFaultHook } : {});
    const view = await this.initialView();
    if (this.stopped) return;
    this.log.info({ view }, `starting in ${formatView(view)}`);
    const marker = join(this.member.dataDir, STARTED_MARKER);
    if (view.primary === this.self && view.view === 1 && !existsSync(marker)) {
      writeFileSync(marker, new Date().toISOString());
      await this.becomePrimary(view, null);
    } else {
      this.becomeBackup(view);
    }
  }

  /**
   * Answer a call whose request its deserializer refused (a peer of another replication protocol
   * version, or a corrupt request) with the reason, logged (rate-limited per peer); false for a request to serve.
   */
  private refused(call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<never>): boolean {
    const refusal = refusalOf(call.request);
    if (refusal === null) return false;
    cb(answerRefusal(this.self, refusal, peerHost(call), this.refusalWarnings));
    return true;
  }

  /** The current view, creating view 1 (first replica primary, the others backups) if none exists. */
  private async initialView(): Promise<View> {
    const c = this.coordinator!;
    for (;;) {
      if (this.stopped) throw new Error('stopped');
      try {
        const v = await c.readView();
        if (v !== null) return v;
        if (this.options.joinOnly === true) {
          throw new WaterbearError('WB_JOIN_FAILED', `cluster "${this.config.cluster}" has no view yet, so there is no primary to join: start it with \`waterbear up\` or \`waterbear replica\` on every member`);
        }
        const first: View = { view: 1, primary: this.config.replicas[0].id, backups: this.config.replicas.slice(1).map((r) => r.id) };
        return await c.proposeView(0, first);
      } catch (err) {
        if (!isWaterbearError(err) || err.code === 'WB_JOIN_FAILED') throw err;
        this.log.debug({ err: err.message }, 'coordinator not ready');
      }
      await new Promise((r) => setTimeout(r, VIEW_RETRY_INTERVAL_MS));
    }
  }

  private clockOption(): { nowMs?: () => number } {
    const clock = this.options.clock;
    return clock === undefined ? {} : { nowMs: () => clock.nowMs() };
  }

  private becomeBackup(view: View | null): void {
    const driver = new BackupDriver({
      self: this.self, dataDir: this.member.dataDir, config: this.config, store: this.store!, coordinator: this.coordinator!,
      credentials: channelCredentials(this.config.tls), log: this.log, ...this.clockOption(),
    }, view);
    driver.on('promote', (v: View) => {
      this.timings.viewCommittedAt = performance.now();
      this.backup = null;
      this.promoting = true;
      void this.promote(v);
    });
    driver.on('applied', (e) => this.emit('applied', e));
    driver.on('staged', (e) => this.emit('staged', e));
    driver.on('join-answer', (e) => this.emit('join-answer', e));
    driver.on('role-changed', () => { if (this.backup === driver) this.emit('role', this.role); });
    this.backup = driver;
    driver.start();
    this.emit('role', this.role);
  }

  private async promote(view: View): Promise<void> {
    try {
      const image = this.store!.loadImageForRestore();
      if (image === null) throw new Error('the store is empty');
      this.timings.restoredAt = performance.now();
      await this.becomePrimary(view, image);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'promotion failed: staying out of the view');
      this.promoting = false;
      if (!this.stopped) this.becomeBackup(await this.coordinator!.readView().catch(() => null));
    }
  }

  private async becomePrimary(view: View, image: RestoreImage<MemoryContents> | null): Promise<void> {
    const hooks: LvmHooks = {};
    const coordinator = this.coordinator!;
    const lvm = await startPrimaryLvm(this.config, image === null ? null : { image }, hooks, () => !coordinator.leaseExpired(this.self));
    this.timings.servingAt = performance.now();
    const driver = new PrimaryDriver({
      self: this.self, config: this.config, view, lvm: lvm.lvm, platform: lvm.platform, nb: lvm.nb, checkpointer: lvm.checkpointer,
      startEpoch: lvm.startEpoch, coordinator, credentials: channelCredentials(this.config.tls), log: this.log, ...this.clockOption(),
    });
    hooks.onSuspended = () => driver.onSuspended();
    hooks.onWake = () => driver.onWake();
    driver.on('checkpoint', (e) => this.emit('checkpoint', e));
    driver.on('protection', (e) => this.emit('protection', e));
    driver.on('backup-failed', (e) => this.emit('backup-failed', e));
    driver.on('refused', (e) => this.emit('refused', e));
    driver.on('released', (e) => this.emit('released', e));
    driver.on('switchover-started', (target) => this.emit('switchover-started', target)); // before the view changes
    driver.on('service-parked', (e) => this.emit('service-parked', e));
    driver.on('service-unparked', (e) => this.emit('service-unparked', e));
    this.primary = driver;
    this.promoting = false;
    this.emit('role', this.role);
    void driver.run().then((end) => this.onPrimaryEnd(end, lvm.platform));
  }

  private async onPrimaryEnd(end: PrimaryEnd, platform: { closeAll(): void }): Promise<void> {
    this.primary = null;
    platform.closeAll();
    this.log.warn({ end }, 'primary role ended');
    if (this.stopped) return;
    if (end.kind === 'guest-exit') {
      this.emit('guest-exit', end.exit);
      return;
    }
    // Fenced: rejoin as a backup of whatever view is current.
    this.becomeBackup(await this.coordinator!.readView().catch(() => null));
  }

  // ---- ReplicaAdmin: operator actions (the dashboard calls them behind its admin token) ----

  private requirePrimary(what: string): PrimaryDriver {
    if (this.primary === null) {
      throw new WaterbearError('WB_NOT_LEADER', `${what} must be done on the primary; ${this.self} is ${this.role}`, { details: { primary: this.statusReply().primaryId } });
    }
    return this.primary;
  }

  async triggerCheckpoint(): Promise<{ epoch: number }> {
    return { epoch: this.requirePrimary('a checkpoint').triggerCheckpoint() };
  }

  async switchover(target: string): Promise<{ view: number }> {
    const v = await this.requirePrimary('a switchover').switchover(target);
    this.emit('admin', { action: 'switchover', target, view: v.view });
    return { view: v.view };
  }

  async removeBackup(id: string): Promise<{ view: number }> {
    const v = await this.requirePrimary('removing a backup').removeBackup(id);
    this.emit('admin', { action: 'remove-backup', backup: id, view: v.view });
    return { view: v.view };
  }

  async addBackup(id: string): Promise<{ accepted: boolean }> {
    this.requirePrimary('adding a backup').addBackup(id);
    this.emit('admin', { action: 'add-backup', backup: id });
    return { accepted: true };
  }

  /** Status for `waterbear status`, the dashboard and the chaos harness. */
  statusReply(): StatusReply {
    const pv = this.primary?.currentView ?? null;
    const bv = this.backup?.protocol.currentView ?? null;
    const v = pv ?? bv;
    const stats = this.primary?.stats;
    return {
      replicaId: this.self, role: this.role, view: v?.view ?? 0, primaryId: v?.primary ?? '', backups: [...(v?.backups ?? [])],
      protected: this.primary !== null ? this.primary.protocol.isProtected : false,
      epoch: stats?.capturedEpoch ?? this.backup?.durableEpoch ?? 0,
      ackedEpoch: stats?.releasedEpoch ?? 0,
      statusJson: JSON.stringify({ stats, links: this.primary?.linkStates() ?? [], timings: this.timings, extras: this.statusExtras?.() ?? null }),
    };
  }

  /** The primary's numbers and guest (read-only, for the dashboard), or null when not primary. */
  primarySnapshot(): { stats: PrimaryStats; links: ReturnType<PrimaryDriver['linkStates']>; guest: PrimaryGuestSnapshot; view: View; protected: boolean } | null {
    const p = this.primary;
    if (p === null) return null;
    return { stats: { ...p.stats }, links: p.linkStates(), guest: p.guestSnapshot(), view: p.currentView, protected: p.protocol.isProtected };
  }

  /** True while this replica is primary and has freed the service address (lease lost). */
  get serviceParked(): boolean { return this.primary?.stats.serviceParked ?? false; }

  /** The durable epoch of this replica's store when it is a backup, else null. */
  get backupDurableEpoch(): number | null { return this.backup?.durableEpoch ?? null; }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.primary?.stop();
    this.backup?.stop();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    await this.coordinator?.close();
    this.store?.close();
  }
}

/**
 * Operator actions a replica accepts (the dashboard calls them behind its admin token). Each
 * resolves with a message for the event log or throws a WaterbearError saying why not.
 */
export interface ReplicaAdmin {
  /** Primary only: take a checkpoint at the guest's next suspension; resolves with its epoch. */
  triggerCheckpoint(): Promise<{ epoch: number }>;
  /** Primary only: hand the primary role to in-sync backup `target` with no lost output. */
  switchover(target: string): Promise<{ view: number }>;
  /** Primary only: drop backup `id` from the view (it will not be re-admitted until added). */
  removeBackup(id: string): Promise<{ view: number }>;
  /** Primary only: (re)admit replica `id`; it joins and is added once caught up. */
  addBackup(id: string): Promise<{ accepted: boolean }>;
}
