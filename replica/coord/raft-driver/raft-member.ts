/**
 * The Raft driver: runs one member of the coordinator's Raft group around the pure `RaftNode`.
 *
 * - Ticks the core every `tickIntervalMs`.
 * - Handles each Ready exactly as raft-types.ts `Ready` says: persist (one durable LMDB transaction,
 *   `saveSync` returns only once it is on disk) → send → restore/apply to the ViewStateMachine →
 *   answer ReadIndex requests. Readies are handled synchronously, one after the other, so no message
 *   ever leaves before the state it depends on is durable.
 * - Compacts the log under a snapshot of the view state machine every `snapshotEveryEntries` entries.
 * - Serves proposals, ReadIndex reads and lease requests from any member: the leader serves them, the
 *   others forward to the leader they know (`routeToLeader`), following WB_NOT_LEADER hints, within a
 *   deadline.
 * - As leader, keeps the grantor side of liveness leases (a `LeaseTable` created when it becomes
 *   leader, with every lease treated as renewed at that moment, as lease.ts requires) and the lease
 *   revocation records (raft-lease-records.ts).
 *
 * Errors: a failed durable write stops the member (it cannot continue safely); every later request
 * fails with that error.
 */
import { randomBytes } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { isWaterbearError, WaterbearError } from '../../../libos-host/errors.js';
import { createLogger, type Logger } from '../../log.js';
import { decodeView, type View } from '../coordinator.js';
import { LeaseTable, type LeaseTiming } from '../lease.js';
import { RaftNode } from '../raft/raft-node.js';
import { SeededRandom } from '../raft/raft-random.js';
import { LmdbRaftStorage } from '../raft/raft-storage-lmdb.js';
import { membershipEquals, makeMembership } from '../raft/raft-membership.js';
import type { Entry, Message, NodeId, ReadState, Role, SoftState } from '../raft/raft-types.js';
import { decodeViewCommand, VIEW_KEY, ViewStateMachine, type ApplyResult } from '../view-state-machine.js';
import { resolveRaftMemberOptions, type RaftMemberOptions, type ResolvedRaftMemberOptions, type UnsafeTestNetwork } from './raft-driver-options.js';
import {
  checkSameTiming,
  encodeRevocation,
  isRevoked,
  LEASE_KEY_PREFIX,
  revokedError,
  revokedInView,
  revokedReplicas,
  timingToWire,
  viewNumber,
} from './raft-lease-records.js';
import { PeerTransport } from './raft-transport.js';
import {
  applyResultFromWire,
  applyResultToWire,
  checkHeader,
  fromFailure,
  header,
  messageFromWire,
  toFailure,
  type KeepAliveReply,
  type KeepAliveRequest,
  type LeaseExpiryReply,
  type LeaseExpiryRequest,
  type ProposeReply,
  type ProposeRequest,
  type RaftBatch,
  type ReadIndexReply,
  type ReadIndexRequest,
  type StatusReply,
  type StatusRequest,
} from './raft-wire.js';

/** Name of the diagnostics channel the driver publishes on (`{event, member, …}`); free when unsubscribed. */
export const RAFT_DRIVER_DIAGNOSTICS_CHANNEL = 'waterbear:coord:raft';
const channel = diagnosticsChannel.channel(RAFT_DRIVER_DIAGNOSTICS_CHANNEL);

/** A committed command's result and where it was applied. */
export interface Applied {
  readonly result: ApplyResult;
  readonly index: number;
}

/** Status of a member, for the CLI, tests and benchmarks. */
export interface MemberStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly snapshotIndex: number;
  readonly lastIndex: number;
  readonly voters: readonly NodeId[];
  readonly view: number;
}

interface PendingProposal {
  readonly term: number;
  readonly resolve: (a: Applied) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Pending<T> {
  readonly resolve: (v: T) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface ApplyWaiter extends Pending<void> {
  readonly index: number;
}

/** The grantor-side state of one leadership: lease table and un-revocation timers. */
interface Leadership {
  readonly table: LeaseTable;
  readonly unrevokeTimers: Map<string, NodeJS.Timeout>;
}

function notLeaderError(leader: NodeId): WaterbearError {
  return new WaterbearError(
    'WB_NOT_LEADER',
    leader === '' ? 'this coordination member is not the leader and knows no leader; retry shortly' : `this coordination member is not the leader; ask ${leader}`,
    { details: { leader } },
  );
}

function retryable(message: string): WaterbearError {
  return new WaterbearError('WB_COORD_UNAVAILABLE', message, { details: { retryable: true } });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class RaftMember {
  readonly id: NodeId;
  readonly options: ResolvedRaftMemberOptions;
  readonly log: Logger;
  /** The replicated state machine (read it only after a linearizable `readIndex`, or for watching). */
  readonly sm = new ViewStateMachine();
  private readonly node: RaftNode;
  private readonly storage: LmdbRaftStorage;
  private readonly transport: PeerTransport;
  private readonly memberIds: ReadonlySet<NodeId>;
  private readonly ticker: NodeJS.Timeout;
  private scheduled = false;
  private closed = false;
  private failure: WaterbearError | null = null;
  private readonly fatalListeners = new Set<(err: WaterbearError) => void>();
  private role: Role = 'follower';
  private leadership: Leadership | null = null;
  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<string, Pending<number>>();
  private applyWaiters: ApplyWaiter[] = [];
  private readonly viewListeners = new Set<(v: View) => void>();
  private requestCounter = 0;
  private readonly requestPrefix = randomBytes(4).toString('hex');
  private malformedWarnings = 0;

  private constructor(
    options: ResolvedRaftMemberOptions,
    storage: LmdbRaftStorage,
    log: Logger,
    private readonly testNetwork: UnsafeTestNetwork | undefined,
  ) {
    this.options = options;
    this.id = options.selfId;
    this.log = log;
    this.storage = storage;
    this.memberIds = new Set(options.members.map((m) => m.id));
    const persisted = storage.load();
    this.sm.restore(persisted.snapshot.meta.index, persisted.snapshot.data);
    this.node = new RaftNode({
      id: this.id,
      persisted,
      random: new SeededRandom(options.seed),
      options: options.raft,
      bootstrapVoters: options.members.map((m) => m.id),
    });
    const configured = makeMembership(options.members.map((m) => m.id));
    if (!membershipEquals(this.node.currentMembership, configured)) {
      this.log.warn(
        { stored: this.node.currentMembership.voters, configured: configured.voters },
        'the stored raft membership differs from the configured members; the stored one is used',
      );
    }
    this.transport = new PeerTransport(this.id, options.clusterName, options.members, options.credentials, testNetwork, log);
    this.ticker = setInterval(() => this.tick(), options.tickIntervalMs);
    this.schedule();
  }

  /**
   * Opens the member's store (bootstrapping a new group from `members` on first start, restarting from
   * the store afterwards) and starts ticking. Serve it with `registerRaftService`.
   * @throws WaterbearError WB_CONFIG_INVALID on bad options; WB_STORE_IO / WB_CHECKPOINT_VERSION when the store cannot be used.
   */
  static open(options: RaftMemberOptions): RaftMember {
    const resolved = resolveRaftMemberOptions(options);
    const log = options.log ?? createLogger('coord-raft', { member: resolved.selfId });
    const storage = LmdbRaftStorage.open(resolved.storeDir);
    try {
      return new RaftMember(resolved, storage, log, options.unsafeTestNetwork);
    } catch (err) {
      void storage.close();
      throw err;
    }
  }

  // ---------------------------------------------------------------- the Ready loop

  private tick(): void {
    if (this.closed) return;
    this.node.tick();
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.processReadies();
    });
  }

  private processReadies(): void {
    if (this.closed) return;
    const viewBefore = viewNumber(this.sm);
    let restored = false;
    try {
      while (this.node.hasReady()) {
        const rd = this.node.ready();
        // 1. Durable before anything that depends on it leaves (saveSync fsyncs before returning).
        this.storage.saveSync(rd);
        // 2. Send.
        if (rd.messages.length > 0) this.transport.send(rd.messages);
        if (rd.softState !== null) this.onSoftState(rd.softState);
        // 3. Restore / apply.
        if (rd.snapshot !== null) {
          this.sm.restore(rd.snapshot.meta.index, rd.snapshot.data);
          restored = true;
          this.onSnapshotRestored(rd.snapshot.meta.index);
        }
        for (const e of rd.committedEntries) this.apply(e);
        // 4. Reads.
        for (const rs of rd.readStates) this.onReadState(rs);
        this.maybeCompact();
      }
    } catch (err) {
      this.fail(err);
      return;
    }
    this.rejectSupersededProposals();
    this.wakeApplyWaiters();
    if (restored && viewNumber(this.sm) > viewBefore) this.notifyView();
  }

  private apply(e: Entry): void {
    const result = this.sm.applyEntry(e);
    const p = this.proposals.get(e.index);
    if (p !== undefined) {
      this.proposals.delete(e.index);
      clearTimeout(p.timer);
      if (e.term !== p.term) p.reject(retryable(`the proposal at index ${e.index} was replaced by a new leader's entry; it was not committed`));
      else if (result === null) p.reject(new WaterbearError('WB_PROTOCOL', `entry ${e.index} applied without a result`));
      else p.resolve({ result, index: e.index });
    }
    if (result !== null && result.ok) {
      if (result.key === VIEW_KEY) {
        this.notifyView();
        this.onViewApplied();
      } else if (result.key.startsWith(LEASE_KEY_PREFIX)) {
        this.onLeaseRecordApplied(result.key.slice(LEASE_KEY_PREFIX.length));
      }
    }
  }

  private onSnapshotRestored(index: number): void {
    // Proposals at or below the snapshot may or may not be in it: their outcome is unknown here.
    for (const [i, p] of this.proposals) {
      if (i > index) continue;
      this.proposals.delete(i);
      clearTimeout(p.timer);
      p.reject(new WaterbearError('WB_COORD_UNAVAILABLE', 'the outcome of the proposal is unknown (this member was caught up by a snapshot); read before retrying', { details: { ambiguous: true } }));
    }
  }

  private maybeCompact(): void {
    const applied = this.sm.appliedIndex;
    if (applied - this.node.snapshotIndex >= this.options.snapshotEveryEntries) {
      this.node.compact(applied, this.sm.snapshot());
      if (channel.hasSubscribers) channel.publish({ event: 'compacted', member: this.id, index: applied });
    }
  }

  private onSoftState(ss: SoftState): void {
    const was = this.role;
    this.role = ss.role;
    if (channel.hasSubscribers) channel.publish({ event: 'soft-state', member: this.id, role: ss.role, leader: ss.leader, term: this.node.currentTerm });
    this.log.debug({ role: ss.role, leader: ss.leader, term: this.node.currentTerm }, 'raft role changed');
    if (ss.role === 'leader' && was !== 'leader') this.becameLeader();
    if (ss.role !== 'leader' && was === 'leader') this.lostLeadership();
  }

  private becameLeader(): void {
    const table = new LeaseTable(this.options.clock, this.options.lease);
    // lease.ts: a new grantor does not know when leases were last renewed; every lease counts as renewed now.
    table.assumeAllRenewed();
    this.leadership = { table, unrevokeTimers: new Map() };
    for (const id of revokedReplicas(this.sm)) this.scheduleUnrevoke(id);
  }

  private lostLeadership(): void {
    const l = this.leadership;
    this.leadership = null;
    if (l !== null) for (const t of l.unrevokeTimers.values()) clearTimeout(t);
    // ReadIndex requests of a lost leadership are dropped by the core: tell the callers now so they retry.
    for (const [ctx, r] of this.reads) {
      this.reads.delete(ctx);
      clearTimeout(r.timer);
      r.reject(notLeaderError(this.node.leader));
    }
  }

  private onReadState(rs: ReadState): void {
    const r = this.reads.get(rs.context);
    if (r === undefined) return;
    this.reads.delete(rs.context);
    clearTimeout(r.timer);
    r.resolve(rs.index);
  }

  private rejectSupersededProposals(): void {
    for (const [index, p] of this.proposals) {
      const term = this.node.termAt(index);
      if (index > this.node.lastIndex || (term !== undefined && term !== p.term)) {
        this.proposals.delete(index);
        clearTimeout(p.timer);
        p.reject(retryable(`the proposal at index ${index} was discarded by a leader change; it was not committed`));
      }
    }
  }

  private wakeApplyWaiters(): void {
    if (this.applyWaiters.length === 0) return;
    const applied = this.sm.appliedIndex;
    const keep: ApplyWaiter[] = [];
    for (const w of this.applyWaiters) {
      if (w.index <= applied) {
        clearTimeout(w.timer);
        w.resolve();
      } else {
        keep.push(w);
      }
    }
    this.applyWaiters = keep;
  }

  private fail(err: unknown): void {
    const e = err instanceof WaterbearError ? err : new WaterbearError('WB_STORE_IO', `the coordination member failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    this.log.error({ err: e.message, code: e.code }, 'coordination member stopped after a fatal error');
    this.failure = e;
    channel.publish({ event: 'failed', member: this.id, code: e.code });
    void this.close();
    for (const l of [...this.fatalListeners]) l(e);
    this.fatalListeners.clear();
  }

  /** Calls `listener` once when this member stops after a fatal error (at once if it has). Returns an unsubscribe function. */
  onFatal(listener: (err: WaterbearError) => void): () => void {
    if (this.failure !== null) {
      const failure = this.failure;
      queueMicrotask(() => listener(failure));
      return () => undefined;
    }
    this.fatalListeners.add(listener);
    return () => {
      this.fatalListeners.delete(listener);
    };
  }

  // ---------------------------------------------------------------- views

  private currentView(): View | null {
    const rec = this.sm.get(VIEW_KEY);
    return rec === undefined ? null : decodeView(rec.value);
  }

  /** The latest view this member has applied (NOT a linearizable read; use `linearizableRead` first). */
  localView(): View | null {
    return this.currentView();
  }

  private notifyView(): void {
    if (this.viewListeners.size === 0) return;
    let v: View | null;
    try {
      v = this.currentView();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'the committed view is malformed');
      return;
    }
    if (v === null) return;
    for (const l of [...this.viewListeners]) {
      try {
        l(v);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'a view watcher threw');
      }
    }
  }

  /** Calls `listener` with each view this member applies, in order. Returns an unsubscribe function. */
  onView(listener: (v: View) => void): () => void {
    this.viewListeners.add(listener);
    return () => {
      this.viewListeners.delete(listener);
    };
  }

  // ---------------------------------------------------------------- local (leader) operations

  private assertUsable(): void {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new WaterbearError('WB_COORD_UNAVAILABLE', 'the coordination member is closed');
  }

  private nextRequestId(): string {
    return `${this.id}-${this.requestPrefix}-${++this.requestCounter}`;
  }

  /** Appends `command` (leader only) and resolves once it is applied. */
  private proposeLocal(command: Uint8Array, timeoutMs: number): Promise<Applied> {
    this.assertUsable();
    const { index, term } = this.node.propose(command);
    const old = this.proposals.get(index);
    if (old !== undefined) {
      this.proposals.delete(index);
      clearTimeout(old.timer);
      old.reject(retryable(`the proposal at index ${index} was discarded by a leader change; it was not committed`));
    }
    this.schedule();
    return new Promise<Applied>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.proposals.get(index)?.timer !== timer) return;
        this.proposals.delete(index);
        reject(new WaterbearError('WB_TIMEOUT', `the proposal at index ${index} was not committed within ${Math.round(timeoutMs)} ms; its outcome is unknown: read before retrying`, { details: { ambiguous: true } }));
      }, Math.max(1, timeoutMs));
      this.proposals.set(index, { term, resolve, reject, timer });
    });
  }

  /** ReadIndex (leader only): resolves with an index the state machine must reach to serve a linearizable read. */
  private readIndexLocal(timeoutMs: number): Promise<number> {
    this.assertUsable();
    const ctx = this.nextRequestId();
    this.node.readIndex(ctx);
    this.schedule();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.reads.delete(ctx)) return;
        reject(new WaterbearError('WB_TIMEOUT', `the leader could not confirm a read with a quorum within ${Math.round(timeoutMs)} ms`));
      }, Math.max(1, timeoutMs));
      this.reads.set(ctx, { resolve, reject, timer });
    });
  }

  /** Resolves once this member's state machine has applied `index`. */
  waitApplied(index: number, timeoutMs: number): Promise<void> {
    this.assertUsable();
    if (this.sm.appliedIndex >= index) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.applyWaiters = this.applyWaiters.filter((w) => w.timer !== timer);
        reject(new WaterbearError('WB_TIMEOUT', `this coordination member did not apply index ${index} within ${Math.round(timeoutMs)} ms (applied ${this.sm.appliedIndex})`));
      }, Math.max(1, timeoutMs));
      this.applyWaiters.push({ index, resolve, reject, timer });
    });
  }

  private requireLeadership(): Leadership {
    this.assertUsable();
    if (this.role !== 'leader' || this.leadership === null) throw notLeaderError(this.node.leader);
    return this.leadership;
  }

  private async keepAliveLocal(replicaId: string, timing: ReturnType<typeof timingToWire>, timeoutMs: number): Promise<number> {
    checkSameTiming(timing, this.options.lease);
    const { table } = this.requireLeadership();
    if (isRevoked(this.sm, replicaId)) throw revokedError(replicaId, viewNumber(this.sm));
    // Recorded on receipt (≥ the holder's send time), before the grant is confirmed: conservative.
    table.renew(replicaId);
    const start = performance.now();
    // Confirms we still lead AFTER receipt, so no newer leader (whose floor would not cover this renewal) existed.
    const index = await this.readIndexLocal(timeoutMs);
    await this.waitApplied(index, timeoutMs - (performance.now() - start));
    // Decided on a state that includes every revocation committed before the request arrived.
    if (isRevoked(this.sm, replicaId)) throw revokedError(replicaId, viewNumber(this.sm));
    return viewNumber(this.sm);
  }

  private async leaseExpiryLocal(replicaId: string, timing: ReturnType<typeof timingToWire>, timeoutMs: number): Promise<{ expired: boolean; remainingMs: number }> {
    checkSameTiming(timing, this.options.lease);
    const { table } = this.requireLeadership();
    const clock = this.options.clock;
    let remaining = table.expiresAtMs(replicaId) - clock.nowMs();
    if (remaining > 0) return { expired: false, remainingMs: remaining };
    if (!isRevoked(this.sm, replicaId)) {
      // Committing the revocation also proves we were still the leader after the check above.
      await this.proposeLocal(encodeRevocation(replicaId, viewNumber(this.sm), this.nextRequestId()), timeoutMs);
      channel.publish({ event: 'lease-revoked', member: this.id, replicaId, view: viewNumber(this.sm) });
    }
    // A renewal received between the check and the revocation may have been granted: it is in `table`.
    remaining = table.expiresAtMs(replicaId) - clock.nowMs();
    if (remaining > 0) return { expired: false, remainingMs: remaining };
    return { expired: true, remainingMs: 0 };
  }

  private onLeaseRecordApplied(replicaId: string): void {
    if (this.leadership !== null && isRevoked(this.sm, replicaId)) this.scheduleUnrevoke(replicaId);
  }

  private onViewApplied(): void {
    const l = this.leadership;
    if (l === null) return;
    // A new view lifts every revocation (grants now carry the new view number).
    for (const [id, t] of l.unrevokeTimers) {
      if (!isRevoked(this.sm, id)) {
        clearTimeout(t);
        l.unrevokeTimers.delete(id);
      }
    }
  }

  private scheduleUnrevoke(replicaId: string): void {
    const l = this.leadership;
    if (l === null || l.unrevokeTimers.has(replicaId)) return;
    const view = revokedInView(this.sm, replicaId);
    const timer = setTimeout(() => {
      l.unrevokeTimers.delete(replicaId);
      if (this.leadership !== l || this.closed || !isRevoked(this.sm, replicaId) || revokedInView(this.sm, replicaId) !== view) return;
      this.log.info({ replicaId, view }, 'lifting a lease revocation: no view change followed it');
      this.proposeLocal(encodeRevocation(replicaId, null, this.nextRequestId()), this.options.leaseRevocationQuarantineMs + 1_000).then(
        () => channel.publish({ event: 'lease-unrevoked', member: this.id, replicaId }),
        (err: Error) => {
          this.log.debug({ replicaId, err: err.message }, 'lifting a lease revocation failed; the next leader retries');
          if (this.leadership === l && isRevoked(this.sm, replicaId)) this.scheduleUnrevoke(replicaId);
        },
      );
    }, this.options.leaseRevocationQuarantineMs);
    l.unrevokeTimers.set(replicaId, timer);
  }

  // ---------------------------------------------------------------- routing to the leader

  /**
   * Runs an operation at the leader: locally when this member leads, else by RPC to the leader it
   * knows, following WB_NOT_LEADER hints and waiting out elections, until `timeoutMs` runs out.
   * `ambiguous` is set when an attempt may have taken effect without us learning the outcome.
   * @throws WaterbearError WB_TIMEOUT (an attempt may have taken effect) or WB_COORD_UNAVAILABLE (no leader reachable);
   *   any non-retryable error of the operation.
   */
  private async routeToLeader<T>(
    what: string,
    timeoutMs: number,
    local: (remainingMs: number) => Promise<T>,
    remote: (leader: NodeId, remainingMs: number) => Promise<T>,
    state: { ambiguous: boolean } = { ambiguous: false },
  ): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    const pause = Math.max(5, Math.floor(this.options.tickIntervalMs / 2));
    let hint: NodeId = '';
    let lastError: WaterbearError | null = null;
    for (let attempt = 0; ; attempt++) {
      this.assertUsable();
      const remaining = deadline - performance.now();
      if (remaining <= 0) break;
      const leader = hint !== '' ? hint : this.node.leader;
      hint = '';
      try {
        if (leader === this.id || this.role === 'leader') return await local(remaining);
        if (leader === '') {
          await sleep(Math.min(pause, remaining));
          continue;
        }
        return await remote(leader, remaining);
      } catch (err) {
        if (!isWaterbearError(err)) throw err;
        lastError = err;
        if (err.details?.ambiguous === true) state.ambiguous = true;
        if (err.code === 'WB_NOT_LEADER') {
          const h = err.details?.leader;
          if (typeof h === 'string' && h !== '' && h !== leader) {
            hint = h;
            continue;
          }
          await sleep(Math.min(pause, Math.max(0, deadline - performance.now())));
          continue;
        }
        if (err.code === 'WB_COORD_UNAVAILABLE' && (err.details?.retryable === true || err.details?.transport === true)) {
          if (err.details?.retryable !== true) await sleep(Math.min(pause, Math.max(0, deadline - performance.now())));
          continue;
        }
        throw err;
      }
    }
    if (state.ambiguous) {
      throw new WaterbearError('WB_TIMEOUT', `${what} did not complete within ${Math.round(timeoutMs)} ms; it may have taken effect: read before retrying`, { cause: lastError ?? undefined });
    }
    throw new WaterbearError('WB_COORD_UNAVAILABLE', `${what}: no coordination leader answered within ${Math.round(timeoutMs)} ms (is a quorum of members running?)`, { cause: lastError ?? undefined });
  }

  /**
   * Proposes a view state machine command through the leader and resolves with its apply result.
   * `state.ambiguous` tells the caller whether an earlier attempt may have been applied.
   */
  propose(command: Uint8Array, timeoutMs: number, state: { ambiguous: boolean } = { ambiguous: false }): Promise<Applied> {
    return this.routeToLeader(
      'the proposal',
      timeoutMs,
      (remaining) => this.proposeLocal(command, remaining),
      async (leader, remaining) => {
        const reply = await this.transport.unary<ProposeRequest, ProposeReply>(
          leader, 'propose', { header: header(this.options.clusterName, this.id, remaining), command }, remaining,
        );
        if (reply.failure !== null) throw fromFailure(reply.failure);
        if (reply.result === null) throw new WaterbearError('WB_PROTOCOL', `the leader ${leader} answered a proposal without a result`);
        return { result: applyResultFromWire(reply.result, ''), index: reply.index };
      },
      state,
    );
  }

  /** A linearizable read barrier: resolves once this member has applied everything committed before the call. */
  async linearizableRead(timeoutMs: number): Promise<void> {
    const start = performance.now();
    const index = await this.routeToLeader(
      'the read',
      timeoutMs,
      (remaining) => this.readIndexLocal(remaining),
      async (leader, remaining) => {
        const reply = await this.transport.unary<ReadIndexRequest, ReadIndexReply>(leader, 'readIndex', { header: header(this.options.clusterName, this.id, remaining) }, remaining);
        if (reply.failure !== null) throw fromFailure(reply.failure);
        return reply.index;
      },
    );
    await this.waitApplied(index, Math.max(1, timeoutMs - (performance.now() - start)));
  }

  /** Renews `replicaId`'s lease at the leader; resolves with the view number the grant is for. */
  keepAlive(replicaId: string, timing: LeaseTiming, timeoutMs: number): Promise<number> {
    const wireTiming = timingToWire(timing);
    return this.routeToLeader(
      'the lease keepalive',
      timeoutMs,
      (remaining) => this.keepAliveLocal(replicaId, wireTiming, remaining),
      async (leader, remaining) => {
        const reply = await this.transport.unary<KeepAliveRequest, KeepAliveReply>(
          leader, 'keepAlive', { header: header(this.options.clusterName, this.id, remaining), replicaId, timing: wireTiming }, remaining,
        );
        if (reply.failure !== null) throw fromFailure(reply.failure);
        return reply.view;
      },
    );
  }

  /** Asks the leader whether `replicaId`'s lease has surely expired (committing its revocation when it has). */
  leaseExpiry(replicaId: string, timing: LeaseTiming, timeoutMs: number): Promise<{ expired: boolean; remainingMs: number }> {
    const wireTiming = timingToWire(timing);
    return this.routeToLeader(
      'the lease expiry check',
      timeoutMs,
      (remaining) => this.leaseExpiryLocal(replicaId, wireTiming, remaining),
      async (leader, remaining) => {
        const reply = await this.transport.unary<LeaseExpiryRequest, LeaseExpiryReply>(
          leader, 'leaseExpiry', { header: header(this.options.clusterName, this.id, remaining), replicaId, timing: wireTiming }, remaining,
        );
        if (reply.failure !== null) throw fromFailure(reply.failure);
        return { expired: reply.expired, remainingMs: reply.remainingMs };
      },
    );
  }

  /** The local status (no network). */
  status(): MemberStatus {
    const s = this.node.status();
    return {
      id: this.id,
      role: s.role,
      term: s.term,
      leader: s.leader,
      commit: s.commit,
      applied: this.sm.appliedIndex,
      snapshotIndex: s.snapshotIndex,
      lastIndex: s.lastIndex,
      voters: s.membership.voters,
      view: viewNumber(this.sm),
    };
  }

  /** Another member's status, by RPC. */
  async peerStatus(peer: NodeId, timeoutMs: number): Promise<StatusReply> {
    return this.transport.unary<StatusRequest, StatusReply>(peer, 'status', { header: header(this.options.clusterName, this.id, timeoutMs) }, timeoutMs);
  }

  /** Transport counters. */
  get transportStats(): PeerTransport['stats'] {
    return this.transport.stats;
  }

  // ---------------------------------------------------------------- incoming (service handlers)

  private checkCaller(from: string, what: string): void {
    if (this.testNetwork?.dropped.has(from) === true) {
      throw new WaterbearError('WB_COORD_UNAVAILABLE', `${what} from ${from} dropped (test partition)`, { details: { transport: true, ambiguous: false } });
    }
  }

  /**
   * Feeds a batch of Raft messages received from a peer.
   * @throws WaterbearError WB_PROTOCOL when the batch's version, cluster or sender is wrong (the stream is then refused).
   */
  receiveBatch(batch: RaftBatch): void {
    checkHeader(batch, this.options.clusterName, `a raft batch from ${JSON.stringify(batch.from)}`);
    if (!this.memberIds.has(batch.from) || batch.from === this.id) {
      throw new WaterbearError('WB_PROTOCOL', `a raft batch from ${JSON.stringify(batch.from)}, which is not a member of cluster "${this.options.clusterName}": check the cluster files`);
    }
    if (this.closed || this.testNetwork?.dropped.has(batch.from) === true) return;
    for (const w of batch.messages) {
      let m: Message;
      try {
        if (w.from !== batch.from) throw new WaterbearError('WB_PROTOCOL', `a raft message from ${JSON.stringify(w.from)} inside a batch from ${batch.from}`);
        m = messageFromWire(w);
        this.node.step(m);
      } catch (err) {
        if (isWaterbearError(err, 'WB_PROTOCOL') && err.details?.invariant === undefined) {
          if (this.malformedWarnings++ < 20) this.log.warn({ from: batch.from, err: err.message }, 'dropped a malformed raft message');
          continue;
        }
        this.fail(err);
        return;
      }
    }
    this.schedule();
  }

  /** Serves a forwarded proposal (leader only: others answer WB_NOT_LEADER with a hint). */
  async serveProposal(req: ProposeRequest): Promise<ProposeReply> {
    try {
      checkHeader(req.header, this.options.clusterName, 'a proposal');
      this.checkCaller(req.header.from, 'a proposal');
      if (decodeViewCommand(req.command) === undefined) throw new WaterbearError('WB_PROTOCOL', 'the proposed command is not a valid view state machine command');
      this.requireLeadership();
      const a = await this.proposeLocal(req.command, req.header.timeoutMs);
      return { failure: null, result: applyResultToWire(a.result), index: a.index };
    } catch (err) {
      return { failure: toFailure(err), result: null, index: 0 };
    }
  }

  /** Serves a forwarded ReadIndex (leader only). */
  async serveReadIndex(req: ReadIndexRequest): Promise<ReadIndexReply> {
    try {
      checkHeader(req.header, this.options.clusterName, 'a read request');
      this.checkCaller(req.header.from, 'a read request');
      this.requireLeadership();
      return { failure: null, index: await this.readIndexLocal(req.header.timeoutMs) };
    } catch (err) {
      return { failure: toFailure(err), index: 0 };
    }
  }

  /** Serves a forwarded keepalive (leader only). */
  async serveKeepAlive(req: KeepAliveRequest): Promise<KeepAliveReply> {
    try {
      checkHeader(req.header, this.options.clusterName, 'a keepalive');
      this.checkCaller(req.header.from, 'a keepalive');
      return { failure: null, view: await this.keepAliveLocal(req.replicaId, req.timing ?? { ttlMs: 0, maxDriftRate: 0, marginMs: 0 }, req.header.timeoutMs) };
    } catch (err) {
      return { failure: toFailure(err), view: 0 };
    }
  }

  /** Serves a forwarded lease expiry check (leader only). */
  async serveLeaseExpiry(req: LeaseExpiryRequest): Promise<LeaseExpiryReply> {
    try {
      checkHeader(req.header, this.options.clusterName, 'a lease expiry check');
      this.checkCaller(req.header.from, 'a lease expiry check');
      const r = await this.leaseExpiryLocal(req.replicaId, req.timing ?? { ttlMs: 0, maxDriftRate: 0, marginMs: 0 }, req.header.timeoutMs);
      return { failure: null, expired: r.expired, remainingMs: r.remainingMs };
    } catch (err) {
      return { failure: toFailure(err), expired: false, remainingMs: 0 };
    }
  }

  /** Serves a status request. @throws WaterbearError WB_PROTOCOL on a bad header. */
  serveStatus(req: StatusRequest): StatusReply {
    checkHeader(req.header, this.options.clusterName, 'a status request');
    const s = this.status();
    return { ...s, voters: [...s.voters] };
  }

  /** True once closed (or failed). */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Stops ticking, fails pending requests, closes peer connections and the store. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    const err = this.failure ?? new WaterbearError('WB_COORD_UNAVAILABLE', 'the coordination member was closed');
    for (const p of this.proposals.values()) { clearTimeout(p.timer); p.reject(err); }
    this.proposals.clear();
    for (const r of this.reads.values()) { clearTimeout(r.timer); r.reject(err); }
    this.reads.clear();
    for (const w of this.applyWaiters) { clearTimeout(w.timer); w.reject(err); }
    this.applyWaiters = [];
    if (this.leadership !== null) for (const t of this.leadership.unrevokeTimers.values()) clearTimeout(t);
    this.leadership = null;
    this.viewListeners.clear();
    this.transport.close();
    await this.storage.close();
  }
}
