/**
 * The Raft protocol core, as a pure deterministic state machine in the style of etcd's raft.
 *
 * A RaftNode never reads a clock, opens a socket or touches a disk. Its inputs are `tick()`,
 * `step(message)`, `propose(data)`, `proposeConfChange(change)`, `readIndex(context)` and
 * `compact(index, data)`; its only output is the `Ready` batch returned by `ready()`, which the
 * driver persists, then sends, then applies (see `Ready` in raft-types.ts for the contract).
 * Randomness (election timeouts) comes from the seeded RandomSource it is given, so the same inputs
 * always give the same outputs.
 *
 * Implemented: leader election with pre-vote (thesis §9.6) and check-quorum with a leader lease on
 * voters; log replication with pipelining, flow control and fast backtracking by term; the commit rule
 * that counts replicas only for entries of the current term (§5.4.2); linearizable ReadIndex reads
 * (thesis §6.4); single-server membership changes with learners, including removing the leader
 * (thesis §4.1–4.2.2); snapshots, log compaction and InstallSnapshot.
 */
import { WaterbearError } from '../../../libos-host/errors.js';
import { resolveRaftOptions, type RaftOptions, type ResolvedRaftOptions } from './raft-config.js';
import { invariant } from './raft-invariant.js';
import { RaftLog } from './raft-log.js';
import {
  allMembers,
  applyConfChange,
  encodeConfEntry,
  isVoter,
  makeMembership,
  quorumSize,
} from './raft-membership.js';
import { validateRaftMessage } from './raft-message-validation.js';
import { Progress } from './raft-progress.js';
import type { RandomSource } from './raft-random.js';
import { ReadOnlyQueue } from './raft-read-only.js';
import {
  isEmptyPersistedState,
  makeMessage,
  NO_NODE,
  type ConfChange,
  type Entry,
  type HardState,
  type Membership,
  type Message,
  type MessageType,
  type NodeId,
  type PersistedState,
  type ReadState,
  type Ready,
  type Role,
  type SoftState,
} from './raft-types.js';
import type { UnsafeRaftTestBugs } from './raft-unsafe-test-bugs.js';

/** Everything a node is built from. */
export interface RaftNodeInit {
  /** This node's id; must be non-empty. */
  readonly id: NodeId;
  /** What stable storage holds (an empty state for a brand-new node). */
  readonly persisted: PersistedState;
  /** Source of the randomized election timeouts. */
  readonly random: RandomSource;
  readonly options?: RaftOptions;
  /**
   * Voters of a brand-new cluster. Used only when `persisted` is empty: the node then writes the
   * bootstrap membership as entry 1 (term 1, committed), identical on every initial voter. A node that
   * joins an existing cluster gets no bootstrap voters and waits for the leader to replicate to it.
   */
  readonly bootstrapVoters?: readonly NodeId[];
  /** Index the application's state machine already reflects (default: the persisted snapshot's index). */
  readonly applied?: number;
  /** Deliberate bugs for proving the checker works. Test-only; see raft-unsafe-test-bugs.ts. */
  readonly unsafeTestBugs?: UnsafeRaftTestBugs;
}

/** Where a proposal landed in the log. It is committed when a Ready hands out an entry with this index and term. */
export interface ProposeResult {
  readonly index: number;
  readonly term: number;
}

/** A read-only picture of a node, for drivers, dashboards and tests. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId;
  readonly leader: NodeId;
  readonly commit: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly snapshotIndex: number;
  /** Last committed index handed out in a Ready. */
  readonly applied: number;
  readonly membership: Membership;
  /** Leader only: per follower match/next/state. */
  readonly progress: ReadonlyMap<NodeId, { match: number; next: number; state: string }>;
}

type CampaignKind = 'preElection' | 'election' | 'transfer';

/** The context of vote requests sent on `timeoutNow`: voters honour it even while they hear a leader. */
const TRANSFER_CONTEXT = 'transfer';

function notLeader(leader: NodeId): WaterbearError {
  return new WaterbearError(
    'WB_NOT_LEADER',
    leader === NO_NODE ? 'this raft node is not the leader and no leader is known; retry later' : `this raft node is not the leader; send the request to ${leader}`,
    { details: { leader } },
  );
}

function isNonNegativeInteger(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0;
}

export class RaftNode {
  readonly id: NodeId;
  private readonly opts: ResolvedRaftOptions;
  private readonly random: RandomSource;
  private readonly bugs: UnsafeRaftTestBugs;

  private term: number;
  private vote: NodeId;
  private lead: NodeId = NO_NODE;
  private role: Role = 'follower';
  private readonly log: RaftLog;

  private membership: Membership;
  /** Index and term of the entry (or snapshot) that set `membership`. */
  private membershipIndex = -1;
  private membershipTerm = -1;

  /** Leader only: progress of every other member. */
  private readonly prs = new Map<NodeId, Progress>();
  /** Candidate only: votes received. */
  private readonly votes = new Map<NodeId, boolean>();

  private electionElapsed = 0;
  /** Leader: ticks since the last heartbeat. Candidates: ticks since vote requests were last sent. */
  private heartbeatElapsed = 0;
  /** Candidates: the kind of the current campaign, for re-sending its vote requests. */
  private campaignKind: CampaignKind = 'election';
  private randomizedElectionTimeout = 0;

  private readonly readOnly = new ReadOnlyQueue();
  /** Leader only: ReadIndex requests received before the leader committed an entry of its term. */
  private pendingReadContexts: string[] = [];

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private appliedHandedOut: number;
  private prevHardState: HardState;
  private prevSoftState: SoftState = { leader: NO_NODE, role: 'follower' };

  /**
   * @throws WaterbearError WB_CONFIG_INVALID on bad options, id or bootstrap voters;
   *   WB_STORE_IO when the persisted state is inconsistent.
   */
  constructor(init: RaftNodeInit) {
    if (typeof init.id !== 'string' || init.id.length === 0) {
      throw new WaterbearError('WB_CONFIG_INVALID', `raft node id must be a non-empty string: got ${JSON.stringify(init.id)}`);
    }
    this.id = init.id;
    this.opts = resolveRaftOptions(init.options);
    this.random = init.random;
    this.bugs = Object.freeze({ ...(init.unsafeTestBugs ?? {}) });

    const p = init.persisted;
    try {
      this.log = new RaftLog(p.snapshot, p.entries, p.hardState.commit);
    } catch (cause) {
      throw new WaterbearError('WB_STORE_IO', 'the persisted raft state is inconsistent; the raft store is damaged', { cause });
    }
    this.term = p.hardState.term;
    this.vote = p.hardState.vote;
    this.prevHardState = p.hardState;
    this.membership = p.snapshot.meta.membership;

    if (init.bootstrapVoters !== undefined && isEmptyPersistedState(p)) {
      const m = makeMembership(init.bootstrapVoters);
      if (!isVoter(m, this.id)) {
        throw new WaterbearError('WB_CONFIG_INVALID', `bootstrap voters must include this node ${this.id}: got ${m.voters.join(', ')}`);
      }
      this.log.append([{ index: 1, term: 1, type: 'conf', data: encodeConfEntry({ change: null, membership: m }) }]);
      this.term = 1;
      this.log.commitTo(1);
    }

    const applied = init.applied ?? this.log.snapshotIndex();
    if (!isNonNegativeInteger(applied) || applied < this.log.snapshotIndex() || applied > this.log.committed) {
      throw new WaterbearError(
        'WB_CONFIG_INVALID',
        `raft applied index must be between the snapshot index ${this.log.snapshotIndex()} and the commit index ${this.log.committed}: got ${String(applied)}`,
      );
    }
    this.appliedHandedOut = applied;
    this.refreshMembership();
    this.becomeFollower(this.term, NO_NODE);
  }

  // ---------------------------------------------------------------- inputs

  /** Advances logical time by one tick (the driver calls it every TICK_INTERVAL_MS). */
  tick(): void {
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Starts an election now (pre-vote first when enabled), if this node is a voter. */
  campaign(): void {
    if (this.role === 'leader') return;
    this.campaignAs(this.opts.preVote ? 'preElection' : 'election');
  }

  /**
   * Feeds a message received from a peer.
   * @throws WaterbearError WB_PROTOCOL when the message is malformed or addressed to another node.
   */
  step(m: Message): void {
    validateRaftMessage(m, this.id);

    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const inLease = this.opts.checkQuorum && this.lead !== NO_NODE && this.electionElapsed < this.opts.electionTicks;
        // Leader lease: while we hear from a leader, a candidate is either partitioned or removed;
        // ignoring it keeps a stable cluster from being disrupted. A leadership transfer is honoured.
        if (inLease && m.context !== TRANSFER_CONTEXT) return;
      }
      if (m.type === 'preVote') {
        // A pre-vote never changes our term.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // A granted pre-vote carries the future term; it is counted below without changing our term.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NO_NODE);
      }
    } else if (m.term < this.term) {
      if ((this.opts.checkQuorum || this.opts.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // A stale leader (or a node that was partitioned away) learns the current term and steps down.
        this.send({ type: 'appResp', to: m.from });
      } else if (m.type === 'preVote' || m.type === 'vote') {
        // Refuse with our term, as the paper's RequestVote does: a candidate whose membership view differs
        // from ours may have no other way to learn the current term, and would campaign a term behind forever.
        this.send({ type: m.type === 'vote' ? 'voteResp' : 'preVoteResp', to: m.from, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
  }

  /**
   * Appends an application command to the log (leader only).
   * @throws WaterbearError WB_NOT_LEADER (details.leader names the known leader, if any).
   */
  propose(data: Uint8Array): ProposeResult {
    if (this.role !== 'leader') throw notLeader(this.lead);
    if (!(data instanceof Uint8Array)) throw new WaterbearError('WB_PROTOCOL', 'raft proposal data must be a Uint8Array');
    return this.appendEntry('normal', data);
  }

  /**
   * Proposes one membership change (leader only). It takes effect on each node as soon as the entry is
   * in its log; the next change is accepted once this one is committed.
   * @throws WaterbearError WB_NOT_LEADER; WB_COORD_UNAVAILABLE while another change is uncommitted or the
   *   leader has not yet committed an entry of its term (retry later); WB_CONFIG_INVALID for a change
   *   that does nothing or would leave no voter.
   */
  proposeConfChange(change: ConfChange): ProposeResult {
    if (this.role !== 'leader') throw notLeader(this.lead);
    // Single-server changes are safe only one at a time, and only once the leader has committed an
    // entry of its own term (the fix to the single-server change bug, raft-dev 2015).
    if (this.log.termAt(this.log.committed) !== this.term) {
      throw new WaterbearError('WB_COORD_UNAVAILABLE', 'the raft leader has not committed an entry of its term yet; retry the membership change shortly');
    }
    if (this.membershipIndex > this.log.committed) {
      throw new WaterbearError('WB_COORD_UNAVAILABLE', `a membership change (entry ${this.membershipIndex}) is still uncommitted; retry when it is`);
    }
    const membership = applyConfChange(this.membership, change);
    return this.appendEntry('conf', encodeConfEntry({ change, membership }));
  }

  /**
   * Requests a linearizable read (leader only). `context` is a unique request id. When leadership is
   * confirmed, a later Ready carries a ReadState {index, context}; the read may be served once the state
   * machine has applied `index`. If leadership is lost first, the request is silently dropped: the
   * driver times it out and retries (softState tells it the role changed).
   *
   * Why this is linearizable (thesis §6.4): `index` is the leader's commit index when the request
   * arrived. (1) The leader waits until it has committed an entry of its own term, so its commit index
   * covers every entry committed by any earlier leader. (2) It then sends a heartbeat round carrying
   * `context` AFTER the request arrived; a quorum answering it at this term proves that no newer leader
   * had been elected when the request arrived (it would need that quorum's votes, and they would then
   * reject our term). So no entry committed before the read began can be above `index`, and reading the
   * state machine at `index` or later returns every write that completed before the read began.
   * @throws WaterbearError WB_NOT_LEADER; WB_PROTOCOL when `context` is empty.
   */
  readIndex(context: string): void {
    if (typeof context !== 'string' || context.length === 0) throw new WaterbearError('WB_PROTOCOL', 'a ReadIndex context must be a non-empty string');
    if (this.role !== 'leader') throw notLeader(this.lead);
    if (this.log.termAt(this.log.committed) !== this.term) {
      this.pendingReadContexts.push(context);
      return;
    }
    this.serveReadIndex(context);
  }

  /**
   * Asks the voter `to` to take over leadership now (leader only; best effort). It is sent only when
   * `to`'s log is up to date; returns whether the request was sent.
   */
  transferLeadership(to: NodeId): boolean {
    if (this.role !== 'leader') throw notLeader(this.lead);
    const pr = this.prs.get(to);
    if (pr === undefined || !isVoter(this.membership, to) || pr.match !== this.log.lastIndex()) return false;
    this.send({ type: 'timeoutNow', to });
    return true;
  }

  /**
   * Compacts the log under an application snapshot. `data` is the state machine's snapshot after
   * applying exactly `index`. The next Ready carries it in `compacted` for the driver to persist.
   * A compaction at or below the current snapshot is a no-op.
   * @throws WaterbearError WB_PROTOCOL when `index` has not been handed out as committed yet.
   */
  compact(index: number, data: Uint8Array): void {
    if (!isNonNegativeInteger(index)) throw new WaterbearError('WB_PROTOCOL', `raft compact index must be a non-negative integer: got ${String(index)}`);
    if (index <= this.log.snapshotIndex()) return;
    if (index > this.appliedHandedOut) {
      throw new WaterbearError('WB_PROTOCOL', `raft can compact only applied entries: index ${index} is above the last applied ${this.appliedHandedOut}`);
    }
    this.log.compact(index, data);
  }

  // ---------------------------------------------------------------- output

  /** True when `ready()` has something to hand out. */
  hasReady(): boolean {
    return (
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      this.log.hasUnpersisted() ||
      this.log.committed > this.appliedHandedOut ||
      !this.hardStateEquals(this.currentHardState(), this.prevHardState) ||
      this.prevSoftState.leader !== this.lead ||
      this.prevSoftState.role !== this.role
    );
  }

  /**
   * Hands out everything pending as one batch and forgets it: the driver now owns persisting,
   * sending and applying it, in that order (see `Ready`).
   */
  ready(): Ready {
    const snapshot = this.log.takeSnapshotToPersist();
    const entries = this.log.takeUnstableEntries();
    const compacted = this.log.takeCompactionToPersist();
    const hs = this.currentHardState();
    const hardState = this.hardStateEquals(hs, this.prevHardState) ? null : hs;
    this.prevHardState = hs;
    let softState: SoftState | null = null;
    if (this.prevSoftState.leader !== this.lead || this.prevSoftState.role !== this.role) {
      softState = { leader: this.lead, role: this.role };
      this.prevSoftState = softState;
    }
    const committedEntries = this.log.between(this.appliedHandedOut + 1, this.log.committed);
    this.appliedHandedOut = this.log.committed;
    const messages = this.msgs;
    const readStates = this.readStates;
    this.msgs = [];
    this.readStates = [];
    return { softState, hardState, entries, snapshot, compacted, committedEntries, messages, readStates };
  }

  // ---------------------------------------------------------------- inspection

  status(): RaftStatus {
    const progress = new Map<NodeId, { match: number; next: number; state: string }>();
    for (const [id, pr] of this.prs) progress.set(id, { match: pr.match, next: pr.next, state: pr.state });
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.lead,
      commit: this.log.committed,
      lastIndex: this.log.lastIndex(),
      lastTerm: this.log.lastTerm(),
      snapshotIndex: this.log.snapshotIndex(),
      applied: this.appliedHandedOut,
      membership: this.membership,
      progress,
    };
  }

  get currentRole(): Role {
    return this.role;
  }

  get currentTerm(): number {
    return this.term;
  }

  get leader(): NodeId {
    return this.lead;
  }

  get commitIndex(): number {
    return this.log.committed;
  }

  get lastIndex(): number {
    return this.log.lastIndex();
  }

  get snapshotIndex(): number {
    return this.log.snapshotIndex();
  }

  get currentMembership(): Membership {
    return this.membership;
  }

  /** The term of the log entry at `index` (the snapshot's at its index), or undefined when compacted or absent. */
  termAt(index: number): number | undefined {
    return this.log.termAt(index);
  }

  /** The log entry at `index`, or undefined when compacted or absent. */
  entryAt(index: number): Entry | undefined {
    return this.log.entryAt(index);
  }

  // ---------------------------------------------------------------- roles

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NO_NODE;
    }
    this.lead = NO_NODE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.votes.clear();
    this.prs.clear();
    this.readOnly.reset();
    this.pendingReadContexts = [];
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.opts.electionTicks + this.random.nextInt(this.opts.electionTicks);
  }

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = 'follower';
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'leader cannot become pre-candidate');
    // Neither term nor vote changes: a pre-election disturbs nobody.
    this.role = 'preCandidate';
    this.votes.clear();
    this.lead = NO_NODE;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
  }

  private becomeCandidate(): void {
    invariant(this.role !== 'leader', 'leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    invariant(this.role === 'candidate', `only a candidate can become leader (was ${this.role})`);
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    this.syncProgressWithMembership();
    // The no-op entry of the new term: committing it commits everything before it (§5.4.2, §8).
    this.appendEntry('normal', new Uint8Array(0));
  }

  private promotable(): boolean {
    return isVoter(this.membership, this.id);
  }

  private campaignAs(kind: CampaignKind): void {
    if (!this.promotable()) return;
    // A pre-candidate asks for term+1 without taking it; a candidate takes the new term and votes for itself.
    if (kind === 'preElection') this.becomePreCandidate();
    else this.becomeCandidate();
    this.campaignKind = kind;
    if (this.poll(this.id, true) === 'won') {
      if (kind === 'preElection') this.campaignAs('election');
      else this.becomeLeader();
      return;
    }
    this.sendVoteRequests();
  }

  /** Asks every voter that has not answered yet (also used to retry lost requests, like the paper's RPC retries). */
  private sendVoteRequests(): void {
    const pre = this.role === 'preCandidate';
    for (const to of this.membership.voters) {
      if (to === this.id || this.votes.has(to)) continue;
      this.msgs.push(
        makeMessage({
          type: pre ? 'preVote' : 'vote',
          from: this.id,
          to,
          term: pre ? this.term + 1 : this.term,
          index: this.log.lastIndex(),
          logTerm: this.log.lastTerm(),
          context: this.campaignKind === 'transfer' ? TRANSFER_CONTEXT : '',
        }),
      );
    }
  }

  /** Records a vote and tallies the voters of the current membership. */
  private poll(from: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.membership.voters) {
      const g = this.votes.get(v);
      if (g === true) yes++;
      else if (g === false) no++;
    }
    const q = quorumSize(this.membership.voters.length);
    if (yes >= q) return 'won';
    if (no > this.membership.voters.length - q) return 'lost';
    return 'pending';
  }

  // ---------------------------------------------------------------- ticks

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaignAs(this.opts.preVote ? 'preElection' : 'election');
      return;
    }
    if (this.role === 'candidate' || this.role === 'preCandidate') {
      // Vote requests are idempotent: re-send the unanswered ones every heartbeat interval so that one
      // lost message does not cost a whole election timeout.
      if (++this.heartbeatElapsed >= this.opts.heartbeatTicks) {
        this.heartbeatElapsed = 0;
        this.sendVoteRequests();
      }
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.opts.electionTicks) {
      this.electionElapsed = 0;
      if (this.opts.checkQuorum) {
        if (!this.quorumActive()) {
          // Check-quorum: we cannot prove we still lead; stop serving so a partitioned minority leader
          // does not keep accepting proposals and reads.
          this.becomeFollower(this.term, NO_NODE);
          return;
        }
        for (const pr of this.prs.values()) pr.recentActive = false;
      }
    }
    for (const [id, pr] of this.prs) {
      if (pr.state === 'snapshot' && ++pr.snapshotTicks >= this.opts.snapshotRetryTicks) {
        pr.becomeProbe();
        this.sendAppend(id, true);
      }
    }
    if (this.heartbeatElapsed >= this.opts.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  private quorumActive(): boolean {
    const voters = this.membership.voters;
    let active = 0;
    for (const v of voters) {
      if (v === this.id || this.prs.get(v)?.recentActive === true) active++;
    }
    return active >= quorumSize(voters.length);
  }

  // ---------------------------------------------------------------- message handling

  private handleVoteRequest(m: Message): void {
    const respType: MessageType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    const canVote =
      this.vote === m.from ||
      (this.vote === NO_NODE && this.lead === NO_NODE) ||
      (m.type === 'preVote' && m.term > this.term) ||
      (this.bugs.grantVoteTwice === true && m.type === 'vote' && this.role === 'follower');
    const upToDate = this.log.isUpToDate(m.index, m.logTerm) || this.bugs.skipLogUpToDateCheck === true;
    if (canVote && upToDate) {
      // A granted vote answers with the candidate's term, so the candidate counts it.
      this.msgs.push(makeMessage({ type: respType, from: this.id, to: m.from, term: m.term }));
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, reject: true });
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'appResp':
        this.handleAppendResponse(m);
        break;
      case 'heartbeatResp':
        this.handleHeartbeatResponse(m);
        break;
      case 'app':
      case 'heartbeat':
      case 'snap':
        invariant(false, `two leaders in term ${this.term}: ${this.id} and ${m.from}`);
        break;
      default:
        // Stale votes and vote answers, timeoutNow for an older transfer: nothing to do.
        break;
    }
  }

  private stepCandidate(m: Message): void {
    const myVoteResp: MessageType = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      default:
        break;
    }
    if (m.type !== myVoteResp) return;
    const result = this.poll(m.from, !m.reject);
    if (result === 'won') {
      if (this.role === 'preCandidate') this.campaignAs('election');
      else this.becomeLeader();
    } else if (result === 'lost') {
      // A lost pre-election keeps our term; a lost election keeps the term we campaigned in.
      this.becomeFollower(this.term, NO_NODE);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        break;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        break;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        break;
      case 'timeoutNow':
        // Our leader hands over: campaign at once, skipping pre-vote, with a context voters honour.
        this.campaignAs('transfer');
        break;
      default:
        break;
    }
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      if (m.entries.length > 0) this.refreshMembership();
      this.send({ type: 'appResp', to: m.from, index: lastNew });
      return;
    }
    // Fast backtracking: tell the leader the largest index at or below its probe whose term is at most
    // the probe's term; the leader skips every index in between (whole terms at a time).
    const [hintIndex, hintTerm] = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: 'appResp', to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm });
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(our match, its commit), so this never exceeds entries we hold.
    if (m.commit > this.log.committed) this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({ type: 'heartbeatResp', to: m.from, context: m.context });
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    invariant(s !== null, 'snap without snapshot');
    if (s.meta.index <= this.log.committed) {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already hold that prefix: just learn it is committed.
      this.log.commitTo(s.meta.index);
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    this.log.restore(s);
    this.appliedHandedOut = s.meta.index;
    this.refreshMembership();
    this.send({ type: 'appResp', to: m.from, index: this.log.lastIndex() });
  }

  private handleAppendResponse(m: Message): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm)[0];
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === 'probe')) return;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      if (this.role !== 'leader') return;
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from, true);
    }
    while (this.role === 'leader' && this.prs.has(m.from) && this.sendAppend(m.from, false)) {
      // keep pipelining while the window allows
    }
  }

  private handleHeartbeatResponse(m: Message): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex() || pr.state === 'probe') this.sendAppend(m.from, true);
    if (m.context.length === 0 || !isVoter(this.membership, m.from)) return;
    const acks = this.readOnly.ack(m.context, m.from);
    if (acks === undefined) return;
    let voterAcks = 0;
    for (const id of acks) if (isVoter(this.membership, id)) voterAcks++;
    if (voterAcks < quorumSize(this.membership.voters.length)) return;
    for (const rs of this.readOnly.advance(m.context)) this.readStates.push(rs);
  }

  // ---------------------------------------------------------------- replication

  private appendEntry(type: 'normal' | 'conf', data: Uint8Array): ProposeResult {
    const index = this.log.lastIndex() + 1;
    this.log.append([{ index, term: this.term, type, data }]);
    if (type === 'conf') this.refreshMembership();
    if (this.role === 'leader') this.maybeCommit();
    if (this.role === 'leader') this.bcastAppend();
    return { index, term: this.term };
  }

  /**
   * Sends `to` the entries from its `next` index (or the snapshot when they were compacted).
   * Returns whether a message was sent.
   */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.termAt(prevIndex);
    const entries = prevTerm === undefined ? undefined : this.log.slice(pr.next, this.opts.maxAppendEntries, this.opts.maxAppendBytes);
    if (prevTerm === undefined || entries === undefined) {
      const snapshot = this.log.snapshot;
      pr.becomeSnapshot(snapshot.meta.index);
      this.send({ type: 'snap', to, snapshot });
      return true;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'app', to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    pr.sentAppend(entries.length > 0 ? entries[entries.length - 1].index : undefined);
    return true;
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) this.sendAppend(id, true);
  }

  private bcastHeartbeat(): void {
    const context = this.readOnly.lastPendingContext();
    for (const [to, pr] of this.prs) {
      this.send({ type: 'heartbeat', to, commit: Math.min(pr.match, this.log.committed), context });
    }
  }

  /** Advances the commit index to what a quorum of voters holds, if that entry is of the current term. */
  private maybeCommit(): boolean {
    if (this.role !== 'leader') return false;
    let candidate: number;
    if (this.bugs.commitWithoutQuorum === true) {
      candidate = this.log.lastIndex();
    } else {
      const voters = this.membership.voters;
      if (voters.length === 0) return false;
      const matches = voters.map((v) => (v === this.id ? this.log.lastIndex() : (this.prs.get(v)?.match ?? 0)));
      matches.sort((a, b) => b - a);
      candidate = matches[quorumSize(voters.length) - 1];
    }
    if (candidate <= this.log.committed) return false;
    // §5.4.2: an entry of an earlier term is never committed by counting replicas; it becomes committed
    // when an entry of the current term after it is.
    if (this.log.termAt(candidate) !== this.term && this.bugs.commitPreviousTermByCounting !== true) return false;
    this.log.commitTo(candidate);
    this.afterCommitAdvanced();
    return true;
  }

  private afterCommitAdvanced(): void {
    if (this.role !== 'leader') return;
    if (this.log.committed >= this.membershipIndex && this.prs.size >= allMembers(this.membership).length) this.syncProgressWithMembership();
    if (this.pendingReadContexts.length > 0 && this.log.termAt(this.log.committed) === this.term) {
      const pending = this.pendingReadContexts;
      this.pendingReadContexts = [];
      for (const ctx of pending) this.serveReadIndex(ctx);
    }
    this.maybeStepDownRemovedLeader();
  }

  private serveReadIndex(context: string): void {
    const index = this.log.committed;
    const voters = this.membership.voters;
    if ((voters.length === 1 && voters[0] === this.id) || this.bugs.readIndexWithoutHeartbeat === true) {
      this.readStates.push({ index, context });
      return;
    }
    this.readOnly.add(context, index, isVoter(this.membership, this.id) ? this.id : null);
    this.bcastHeartbeat();
  }

  // ---------------------------------------------------------------- membership

  /** Re-reads the latest membership in the log after it may have changed. */
  private refreshMembership(): void {
    const idx = this.log.lastConfIndex();
    const term = this.log.termAt(idx);
    if (idx === this.membershipIndex && term === this.membershipTerm) return;
    const found = this.log.membershipAt(this.log.lastIndex());
    this.membership = found.membership;
    this.membershipIndex = found.index;
    this.membershipTerm = found.term;
    if (this.role === 'leader') {
      this.syncProgressWithMembership();
      if (this.maybeCommit() && this.role === 'leader') this.bcastAppend();
      this.maybeStepDownRemovedLeader();
    }
  }

  /**
   * Tracks progress for every member, and — while the latest change is uncommitted — for the members it
   * removes too, so that a removed node receives the entry that removes it and stops campaigning. Quorums
   * only ever count the voters of the latest membership.
   */
  private syncProgressWithMembership(): void {
    const members = new Set(allMembers(this.membership));
    if (this.membershipIndex > this.log.committed) {
      for (const id of allMembers(this.log.membershipAt(this.membershipIndex - 1).membership)) members.add(id);
    }
    for (const id of [...this.prs.keys()]) {
      if (!members.has(id)) this.prs.delete(id);
    }
    for (const id of members) {
      if (id !== this.id && !this.prs.has(id)) this.prs.set(id, new Progress(this.log.lastIndex() + 1, this.opts.maxInflightAppends));
    }
  }

  /**
   * A leader that is no longer a voter keeps leading until the entry that removed it is committed
   * (it does not count itself in quorums meanwhile), then hands over to the most up-to-date voter and
   * steps down (thesis §4.2.2).
   */
  private maybeStepDownRemovedLeader(): void {
    if (this.role !== 'leader' || isVoter(this.membership, this.id) || this.log.committed < this.membershipIndex) return;
    this.bcastAppend();
    let best: NodeId = NO_NODE;
    let bestMatch = -1;
    for (const [id, pr] of this.prs) {
      if (isVoter(this.membership, id) && pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best !== NO_NODE && bestMatch === this.log.lastIndex()) this.send({ type: 'timeoutNow', to: best });
    this.becomeFollower(this.term, NO_NODE);
  }

  // ---------------------------------------------------------------- helpers

  private send(fields: Pick<Message, 'type' | 'to'> & Partial<Omit<Message, 'type' | 'to' | 'from' | 'term'>>): void {
    this.msgs.push(makeMessage({ from: this.id, term: this.term, ...fields }));
  }

  private currentHardState(): HardState {
    return { term: this.term, vote: this.bugs.skipVotePersistence === true ? NO_NODE : this.vote, commit: this.log.committed };
  }

  private hardStateEquals(a: HardState, b: HardState): boolean {
    return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
  }
}
