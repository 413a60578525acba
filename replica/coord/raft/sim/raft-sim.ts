/**
 * Deterministic simulation of a Raft cluster (FoundationDB / TigerBeetle style): N nodes, a faulty
 * network, crashes and restarts, clients proposing values, reads and membership changes — every
 * choice drawn from ONE seeded generator, so a seed replays the exact same run.
 *
 * A run has two phases. Chaos: faults come and go at random while the checker verifies the safety
 * invariants on every step (sim-checker.ts). Heal: the network is repaired, every crashed node
 * restarts, and the cluster must make progress: a marker value proposed after healing must be applied
 * by every member of the final membership within a bounded time (liveness).
 *
 * Crashes are modelled precisely: a node persists only what its driver wrote from a Ready. Readies are
 * processed at random moments (so unpersisted state piles up) and a crash can also strike between
 * persisting a Ready and sending its messages. A restarted node is rebuilt from its persisted state
 * only; its state machine from the persisted snapshot plus the committed entries Raft hands out again.
 */
import { isWaterbearError } from '../../../../libos-host/errors.js';
import { encodeViewCommand, ViewStateMachine } from '../../view-state-machine.js';
import { allMembers, isMember, isVoter } from '../raft-membership.js';
import { RaftNode } from '../raft-node.js';
import { SeededRandom } from '../raft-random.js';
import { MemoryRaftStorage } from '../raft-storage.js';
import type { ConfChange, Message, NodeId, Ready } from '../raft-types.js';
import type { UnsafeRaftTestBugs } from '../raft-unsafe-test-bugs.js';
import { digestEntry, EMPTY_DIGEST, InvariantViolation, mix, SimChecker, type InvariantName } from './sim-checker.js';
import { SimNetwork, type NetworkFaults } from './sim-network.js';

/** Simulation steps per Raft tick (messages usually arrive within one tick). */
export const SIM_STEPS_PER_TICK = 4;

export interface SimConfig {
  readonly seed: number;
  /** Initial voters (3 or 5 in the suite). */
  readonly nodes: number;
  /** Extra nodes that start empty and can be added by membership changes. Default 1. */
  readonly spares?: number;
  /** Length of the chaos phase, in ticks. Default 150. */
  readonly chaosTicks?: number;
  /** Time the healed cluster has to make progress, in ticks. Default 300. */
  readonly healTicks?: number;
  readonly unsafeTestBugs?: UnsafeRaftTestBugs;
  /** Record a human-readable trace (slower; for replaying a failing seed). */
  readonly trace?: boolean;
}

export interface SimViolation {
  readonly invariant: InvariantName;
  readonly message: string;
  readonly tick: number;
}

export interface SimResult {
  readonly seed: number;
  readonly nodes: number;
  readonly violation: SimViolation | null;
  /** Digest of every event of the run: equal digests ⇔ (practically) identical runs. */
  readonly traceDigest: string;
  readonly trace: readonly string[];
  readonly stats: {
    readonly ticks: number;
    readonly messages: number;
    readonly dropped: number;
    readonly crashes: number;
    readonly elections: number;
    readonly committed: number;
    readonly proposals: number;
    readonly confChanges: number;
    readonly reads: number;
    readonly snapshotsInstalled: number;
  };
}

/** Per-run random fault profile. */
interface Profile {
  readonly network: NetworkFaults;
  readonly crashPerTick: number;
  readonly restartPerTick: number;
  /** Per Ready: crash between persisting it and sending its messages. */
  readonly crashAfterPersist: number;
  /** Per Ready that grants a vote: crash right after sending it (then usually a fast reboot). */
  readonly crashAfterVote: number;
  /** Per election: crash the new leader within two ticks. */
  readonly crashNewLeader: number;
  /** Probability that a crashed node reboots within two ticks instead of at a random later tick. */
  readonly fastReboot: number;
  /** Share of partitions that isolate the current leader. */
  readonly isolateLeader: number;
  readonly partitionPerTick: number;
  readonly healPerTick: number;
  readonly readyPerStep: number;
  readonly proposePerTick: number;
  readonly confChangePerTick: number;
  readonly readPerTick: number;
  readonly transferPerTick: number;
  readonly compactEvery: number;
  readonly clockSkipPerTick: number;
  readonly maxAppendEntries: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Short timeouts mean more elections, more split votes and more stale leaders per run. */
  readonly electionTicks: number;
}

const MARKER_KEY = '__heal_marker';
const KEYS = ['view', 'a', 'b'];

/** One simulated machine: durable storage survives crashes; everything else is lost. */
class SimNode {
  raft: RaftNode | null = null;
  sm = new ViewStateMachine();
  digest = EMPTY_DIGEST;
  readonly storage = new MemoryRaftStorage();
  lastLeaderTerm = -1;
  /** Simulation step at which a scheduled crash or reboot happens (-1: none). */
  crashAt = -1;
  rebootAt = -1;

  constructor(readonly id: NodeId) {}

  get alive(): boolean {
    return this.raft !== null;
  }
}

function encodeAppSnapshot(digest: number, sm: ViewStateMachine): Uint8Array {
  const body = sm.snapshot();
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, digest);
  out.set(body, 4);
  return out;
}

function decodeAppSnapshot(index: number, data: Uint8Array): { digest: number; sm: ViewStateMachine } {
  const sm = new ViewStateMachine();
  if (index === 0) return { digest: EMPTY_DIGEST, sm };
  const digest = new DataView(data.buffer, data.byteOffset, data.length).getUint32(0);
  sm.restore(index, data.subarray(4));
  return { digest, sm };
}

class Simulation {
  private readonly rng: SeededRandom;
  private readonly net: SimNetwork;
  private readonly checker = new SimChecker();
  private readonly nodes: SimNode[] = [];
  private readonly byId = new Map<NodeId, SimNode>();
  private readonly profile: Profile;
  private step = 0;
  private healing = false;
  private digest = EMPTY_DIGEST;
  readonly trace: string[] = [];
  private seq = 0;
  private readonly pendingReads = new Map<string, number>();
  private readonly stats = {
    ticks: 0,
    crashes: 0,
    elections: 0,
    proposals: 0,
    confChanges: 0,
    reads: 0,
    snapshotsInstalled: 0,
  };
  private lastMarkerTick = -1_000;

  constructor(private readonly cfg: SimConfig) {
    this.rng = new SeededRandom(cfg.seed);
    const r = this.rng;
    this.profile = {
      network: {
        loss: r.pick([0, 0.01, 0.05, 0.15]),
        duplicate: r.pick([0, 0.02, 0.1]),
        reorder: r.pick([0, 0.05, 0.2]),
        baseDelaySteps: 1 + r.nextInt(SIM_STEPS_PER_TICK),
        longDelaySteps: r.pick([4, 16, 60]),
      },
      crashPerTick: r.pick([0, 0.01, 0.03, 0.08]),
      restartPerTick: r.pick([0.05, 0.2, 0.6]),
      crashAfterPersist: r.pick([0, 0.003]),
      crashAfterVote: r.pick([0, 0.1, 0.3]),
      crashNewLeader: r.pick([0, 0.1, 0.3]),
      fastReboot: r.pick([0, 0.5, 0.9]),
      isolateLeader: r.pick([0, 0.5]),
      partitionPerTick: r.pick([0, 0.02, 0.05]),
      healPerTick: r.pick([0.03, 0.1]),
      readyPerStep: r.pick([0.3, 0.7, 1]),
      proposePerTick: r.pick([0.2, 0.6]),
      confChangePerTick: r.pick([0, 0.03, 0.08]),
      readPerTick: r.pick([0, 0.3, 1]),
      transferPerTick: r.pick([0, 0.01]),
      compactEvery: r.pick([3, 10, 40, 1_000_000]),
      clockSkipPerTick: r.pick([0, 0.05]),
      maxAppendEntries: r.pick([1, 3, 64]),
      electionTicks: r.pick([3, 5, 10]),
      // Both production modes are exercised; turning both off is unsupported (removed members could disrupt forever).
      ...r.pick([
        { preVote: true, checkQuorum: true },
        { preVote: true, checkQuorum: true },
        { preVote: false, checkQuorum: true },
        { preVote: true, checkQuorum: false },
      ]),
    };
    this.net = new SimNetwork(this.rng, { ...this.profile.network });
    const total = cfg.nodes + (cfg.spares ?? 1);
    const voters: NodeId[] = [];
    for (let i = 1; i <= total; i++) {
      const node = new SimNode(`n${i}`);
      this.nodes.push(node);
      this.byId.set(node.id, node);
      if (i <= cfg.nodes) voters.push(node.id);
    }
    for (const node of this.nodes) this.start(node, voters.includes(node.id) ? voters : undefined);
    this.note(`profile ${JSON.stringify(this.profile)}`);
  }

  // ------------------------------------------------------------------ bookkeeping

  private event(code: number, a: number, b: number): void {
    this.digest = mix(mix(mix(this.digest, code), a), b);
  }

  private note(text: string): void {
    if (this.cfg.trace === true) this.trace.push(`[${this.step}] ${text}`);
  }

  private nodeIndex(id: NodeId): number {
    return Number(id.slice(1));
  }

  // ------------------------------------------------------------------ node lifecycle

  private start(node: SimNode, bootstrapVoters?: NodeId[]): void {
    const persisted = node.storage.load();
    const { digest, sm } = decodeAppSnapshot(persisted.snapshot.meta.index, persisted.snapshot.data);
    node.sm = sm;
    node.digest = digest;
    node.lastLeaderTerm = -1;
    node.raft = new RaftNode({
      id: node.id,
      persisted,
      random: this.rng.fork(),
      options: {
        electionTicks: this.profile.electionTicks,
        heartbeatTicks: 1,
        maxAppendEntries: this.profile.maxAppendEntries,
        snapshotRetryTicks: 15,
        preVote: this.profile.preVote,
        checkQuorum: this.profile.checkQuorum,
      },
      ...(bootstrapVoters !== undefined ? { bootstrapVoters } : {}),
      ...(this.cfg.unsafeTestBugs !== undefined ? { unsafeTestBugs: this.cfg.unsafeTestBugs } : {}),
    });
    this.checker.onRestore(node.id, persisted.snapshot.meta.index, persisted.snapshot.meta.term, digest);
  }

  private crash(node: SimNode, why: string): void {
    if (node.raft === null) return;
    node.raft = null;
    node.crashAt = -1;
    node.rebootAt = this.rng.chance(this.profile.fastReboot) ? this.step + 1 + this.rng.nextInt(2 * SIM_STEPS_PER_TICK) : -1;
    this.stats.crashes++;
    this.event(1, this.nodeIndex(node.id), this.step);
    this.note(`${node.id} CRASH (${why}); persisted ${node.storage.saves} readies`);
  }

  private restart(node: SimNode): void {
    node.rebootAt = -1;
    this.start(node);
    this.event(2, this.nodeIndex(node.id), this.step);
    const s = node.raft?.status();
    this.note(`${node.id} RESTART term ${s?.term} commit ${s?.commit} last ${s?.lastIndex} snapshot ${s?.snapshotIndex}`);
  }

  /** Runs `fn` against a live node and then checks what changed. */
  private act(node: SimNode, fn: (raft: RaftNode) => void): void {
    const raft = node.raft;
    if (raft === null) return;
    try {
      fn(raft);
    } catch (err) {
      if (err instanceof InvariantViolation) throw err;
      if (isWaterbearError(err, 'WB_PROTOCOL') && err.details?.invariant === true) {
        throw new InvariantViolation('node-assertion', `${node.id}: ${err.message}`);
      }
      throw err;
    }
    this.observe(node, raft);
  }

  private observe(node: SimNode, raft: RaftNode): void {
    if (raft.currentRole === 'leader' && node.lastLeaderTerm !== raft.currentTerm) {
      node.lastLeaderTerm = raft.currentTerm;
      this.stats.elections++;
      this.event(3, this.nodeIndex(node.id), raft.currentTerm);
      this.note(`${node.id} LEADER term ${raft.currentTerm} last ${raft.lastIndex} commit ${raft.commitIndex}`);
      this.checker.onLeader(node.id, raft.currentTerm, raft);
      if (!this.healing && this.rng.chance(this.profile.crashNewLeader)) node.crashAt = this.step + this.rng.nextInt(2 * SIM_STEPS_PER_TICK);
    }
  }

  // ------------------------------------------------------------------ the driver loop of one node

  private processReady(node: SimNode): void {
    const raft = node.raft;
    if (raft === null || !raft.hasReady()) return;
    const rd: Ready = raft.ready();
    // Log matching: every entry handed out for persistence, with the term before it.
    for (const e of rd.entries) this.checker.onLogEntry(node.id, e, raft.termAt(e.index - 1));
    // 1. persist
    node.storage.saveSync(rd);
    this.event(4, this.nodeIndex(node.id), rd.entries.length);
    if (!this.healing && this.profile.crashAfterPersist > 0 && this.rng.chance(this.profile.crashAfterPersist)) {
      this.crash(node, 'after persisting, before sending');
      return;
    }
    // 2. send
    let grantsVote = false;
    for (const m of rd.messages) {
      this.net.send(m, this.step);
      if (m.type === 'voteResp' && !m.reject) grantsVote = true;
    }
    if (grantsVote && !this.healing && this.profile.crashAfterVote > 0 && this.rng.chance(this.profile.crashAfterVote)) {
      this.crash(node, 'right after granting a vote');
      return;
    }
    // 3. apply
    if (rd.snapshot !== null) {
      const { digest, sm } = decodeAppSnapshot(rd.snapshot.meta.index, rd.snapshot.data);
      node.sm = sm;
      node.digest = digest;
      this.stats.snapshotsInstalled++;
      this.note(`${node.id} installs snapshot ${rd.snapshot.meta.index}`);
      this.checker.onRestore(node.id, rd.snapshot.meta.index, rd.snapshot.meta.term, digest);
    }
    for (const e of rd.committedEntries) {
      if (e.index <= node.sm.appliedIndex) continue;
      node.sm.applyEntry(e);
      node.digest = digestEntry(node.digest, e);
      this.checker.onApply(node.id, e, node.digest);
    }
    if (rd.committedEntries.length > 0) this.event(5, this.nodeIndex(node.id), node.sm.appliedIndex);
    // 4. reads
    for (const rs of rd.readStates) {
      const minIndex = this.pendingReads.get(rs.context);
      if (minIndex === undefined) continue;
      this.pendingReads.delete(rs.context);
      this.note(`${node.id} read ${rs.context} confirmed at ${rs.index} (min ${minIndex})`);
      this.checker.onReadState(node.id, rs.context, rs.index, minIndex);
    }
    // 5. compaction
    const applied = node.sm.appliedIndex;
    if (applied - raft.snapshotIndex >= this.profile.compactEvery) {
      raft.compact(applied, encodeAppSnapshot(node.digest, node.sm));
      this.note(`${node.id} compacts to ${applied}`);
    }
  }

  // ------------------------------------------------------------------ clients and faults

  private leaders(): SimNode[] {
    return this.nodes.filter((n) => n.raft !== null && n.raft.currentRole === 'leader');
  }

  private propose(node: SimNode, data: Uint8Array, what: string): void {
    this.act(node, (raft) => {
      try {
        const r = raft.propose(data);
        this.stats.proposals++;
        this.note(`${node.id} propose ${what} at ${r.index} term ${r.term}`);
      } catch (err) {
        if (!isWaterbearError(err, 'WB_NOT_LEADER')) throw err;
      }
    });
  }

  private clientActions(): void {
    const p = this.profile;
    const r = this.rng;
    const leaders = this.leaders();
    if (r.chance(p.proposePerTick)) {
      // Mostly to a leader; sometimes to anyone (who refuses unless leader).
      const target = leaders.length > 0 && r.chance(0.9) ? r.pick(leaders) : r.pick(this.nodes);
      const key = r.pick(KEYS);
      const id = `c${++this.seq}`;
      const cmd =
        r.chance(0.5)
          ? ({ op: 'put', key, value: id } as const)
          : ({ op: 'cas', key, expectedVersion: target.sm.get(key)?.version ?? 0, value: id } as const);
      this.propose(target, encodeViewCommand(cmd, id), `${cmd.op} ${key}=${id}`);
    }
    if (r.chance(p.readPerTick) && this.leaders().length > 0) {
      const target = r.pick(this.leaders());
      const ctx = `r${++this.seq}`;
      this.act(target, (raft) => {
        if (raft.currentRole !== 'leader') return;
        raft.readIndex(ctx);
        this.pendingReads.set(ctx, this.checker.maxCommitted);
        this.stats.reads++;
        this.note(`${target.id} readIndex ${ctx} (committed so far ${this.checker.maxCommitted})`);
      });
    }
    if (!this.healing && r.chance(p.confChangePerTick) && this.leaders().length > 0) this.membershipChange(r.pick(this.leaders()));
    if (!this.healing && r.chance(p.transferPerTick) && this.leaders().length > 0) {
      const leader = r.pick(this.leaders());
      const raft = leader.raft;
      if (raft !== null) {
        const others = raft.currentMembership.voters.filter((v) => v !== leader.id);
        if (others.length > 0) {
          const to = r.pick(others);
          this.act(leader, (x) => {
            if (x.currentRole === 'leader' && x.transferLeadership(to)) this.note(`${leader.id} transfers leadership to ${to}`);
          });
        }
      }
    }
  }

  private membershipChange(leader: SimNode): void {
    const raft = leader.raft;
    if (raft === null) return;
    const m = raft.currentMembership;
    const r = this.rng;
    const outsiders = this.nodes.filter((n) => !isMember(m, n.id)).map((n) => n.id);
    const members = allMembers(m);
    let cc: ConfChange;
    const roll = r.nextFloat();
    if (outsiders.length > 0 && roll < 0.4) cc = { type: r.chance(0.5) ? 'addLearner' : 'addVoter', node: r.pick(outsiders) };
    else if (m.learners.length > 0 && roll < 0.6) cc = { type: 'addVoter', node: r.pick(m.learners) };
    else cc = { type: 'removeNode', node: r.pick(members) };
    if (cc.type === 'removeNode' && isVoter(m, cc.node) && m.voters.length <= 2) return;
    this.act(leader, (x) => {
      try {
        const res = x.proposeConfChange(cc);
        this.stats.confChanges++;
        this.note(`${leader.id} proposes ${cc.type} ${cc.node} at ${res.index}`);
      } catch (err) {
        if (!isWaterbearError(err, 'WB_COORD_UNAVAILABLE') && !isWaterbearError(err, 'WB_CONFIG_INVALID') && !isWaterbearError(err, 'WB_NOT_LEADER')) throw err;
      }
    });
  }

  private faults(): void {
    const p = this.profile;
    const r = this.rng;
    const alive = this.nodes.filter((n) => n.alive);
    if (alive.length > 0 && r.chance(p.crashPerTick)) this.crash(r.pick(alive), 'random');
    for (const n of this.nodes) if (!n.alive && n.rebootAt < 0 && r.chance(p.restartPerTick)) this.restart(n);
    if (this.net.partitioned && r.chance(p.healPerTick)) {
      this.net.healAll();
      this.event(6, 0, 0);
      this.note('network healed');
    } else if (r.chance(p.partitionPerTick)) {
      const ids = this.nodes.map((n) => n.id);
      const leaders = this.leaders();
      if (leaders.length > 0 && r.chance(p.isolateLeader)) {
        const leader = r.pick(leaders).id;
        const others = ids.filter((id) => id !== leader);
        const how = r.nextInt(3);
        for (const o of others) {
          if (how !== 1) this.net.block(leader, o);
          if (how !== 2) this.net.block(o, leader);
        }
        this.event(9, this.nodeIndex(leader), how);
        this.note(`isolate leader ${leader} (${['both ways', 'inbound cut', 'outbound cut'][how]})`);
      } else if (r.chance(0.6)) {
        const shuffled = [...ids];
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = r.nextInt(i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
        }
        const cut = 1 + r.nextInt(ids.length - 1);
        const a = shuffled.slice(0, cut).sort();
        const b = shuffled.slice(cut).sort();
        this.net.partition(a, b);
        this.event(7, a.length, b.length);
        this.note(`partition {${a.join(',')}} | {${b.join(',')}}`);
      } else {
        const from = r.pick(ids);
        const tos = ids.filter((id) => id !== from && r.chance(0.6));
        for (const to of tos) {
          if (r.chance(0.5)) this.net.block(from, to);
          else this.net.block(to, from);
        }
        this.event(8, this.nodeIndex(from), tos.length);
        this.note(`one-way cuts around ${from}: ${tos.join(',')}`);
      }
    }
  }

  private heal(): void {
    this.healing = true;
    this.net.healAll();
    this.net.faults = { loss: 0, duplicate: 0, reorder: 0, baseDelaySteps: 2, longDelaySteps: 1 };
    for (const n of this.nodes) if (!n.alive) this.restart(n);
    this.note('HEAL: network repaired, all nodes up');
  }

  /** Liveness: every member of the current leader's membership has applied a marker proposed after healing. */
  private live(): boolean {
    const leaders = this.leaders();
    if (leaders.length === 0) return false;
    const leader = leaders.reduce((a, b) => ((a.raft?.currentTerm ?? 0) >= (b.raft?.currentTerm ?? 0) ? a : b));
    const raft = leader.raft;
    if (raft === null) return false;
    if (this.stats.ticks - this.lastMarkerTick >= 20) {
      this.lastMarkerTick = this.stats.ticks;
      const id = `heal${++this.seq}`;
      this.propose(leader, encodeViewCommand({ op: 'put', key: MARKER_KEY, value: id }, id), `marker ${id}`);
    }
    for (const id of allMembers(raft.currentMembership)) {
      const n = this.byId.get(id);
      if (n === undefined || n.raft === null) return false;
      const marker = n.sm.get(MARKER_KEY);
      if (marker === undefined || !marker.value.startsWith('heal')) return false;
    }
    return true;
  }

  private describe(): string {
    return this.nodes
      .map((n) => {
        if (n.raft === null) return `${n.id}: down`;
        const s = n.raft.status();
        return `${n.id}: ${s.role} term ${s.term} leader ${s.leader || '-'} commit ${s.commit} last ${s.lastIndex} applied ${n.sm.appliedIndex} voters [${s.membership.voters.join(',')}] learners [${s.membership.learners.join(',')}]`;
      })
      .join('; ');
  }

  // ------------------------------------------------------------------ the run

  run(): SimResult {
    const chaosTicks = this.cfg.chaosTicks ?? 150;
    const healTicks = this.cfg.healTicks ?? 300;
    let violation: SimViolation | null = null;
    try {
      this.loop(chaosTicks, false);
      this.heal();
      if (!this.loop(healTicks, true)) {
        throw new InvariantViolation('liveness', `no progress ${healTicks} ticks after healing: ${this.describe()}`);
      }
    } catch (err) {
      if (!(err instanceof InvariantViolation)) throw err;
      violation = { invariant: err.invariant, message: err.message, tick: this.stats.ticks };
      this.note(`VIOLATION ${err.message}`);
    }
    return {
      seed: this.cfg.seed,
      nodes: this.cfg.nodes,
      violation,
      traceDigest: this.digest.toString(16).padStart(8, '0'),
      trace: this.trace,
      stats: {
        ...this.stats,
        messages: this.net.sent,
        dropped: this.net.dropped,
        committed: this.checker.maxCommitted,
      },
    };
  }

  /** Runs `ticks` ticks; in the heal phase returns true as soon as the cluster is live. */
  private loop(ticks: number, healPhase: boolean): boolean {
    const p = this.profile;
    for (let t = 0; t < ticks; t++) {
      for (let s = 0; s < SIM_STEPS_PER_TICK; s++) {
        this.step++;
        for (const n of this.nodes) {
          if (n.crashAt === this.step && !healPhase) this.crash(n, 'new leader');
          if (n.rebootAt === this.step && n.raft === null) this.restart(n);
        }
        for (const m of this.net.take(this.step)) this.deliver(m);
        for (const n of this.nodes) {
          if (n.raft !== null && (healPhase || p.readyPerStep >= 1 || this.rng.chance(p.readyPerStep))) this.processReady(n);
        }
      }
      this.stats.ticks++;
      for (const n of this.nodes) {
        if (n.raft === null) continue;
        if (!healPhase && p.clockSkipPerTick > 0 && this.rng.chance(p.clockSkipPerTick)) continue;
        this.act(n, (raft) => raft.tick());
      }
      if (!healPhase) this.faults();
      this.clientActions();
      if (healPhase && this.live()) {
        this.note(`LIVE after ${t} ticks of healing: ${this.describe()}`);
        return true;
      }
    }
    return false;
  }

  private deliver(m: Message): void {
    const node = this.byId.get(m.to);
    if (node === undefined || node.raft === null) return;
    this.event(10 + m.type.length, this.nodeIndex(m.from) * 16 + this.nodeIndex(m.to), m.term * 65536 + m.index);
    if (this.cfg.trace === true) this.note(`${m.from}->${m.to} ${describeMessage(m)}`);
    this.act(node, (raft) => raft.step(m));
  }
}

function describeMessage(m: Message): string {
  switch (m.type) {
    case 'app':
      return `app t${m.term} prev ${m.index}/${m.logTerm} n=${m.entries.length} commit ${m.commit}`;
    case 'appResp':
      return `appResp t${m.term} ${m.reject ? `REJECT ${m.index} hint ${m.rejectHint}/${m.logTerm}` : `ok ${m.index}`}`;
    case 'vote':
    case 'preVote':
      return `${m.type} t${m.term} last ${m.index}/${m.logTerm}${m.context ? ` ${m.context}` : ''}`;
    case 'voteResp':
    case 'preVoteResp':
      return `${m.type} t${m.term} ${m.reject ? 'REJECT' : 'grant'}`;
    case 'heartbeat':
      return `heartbeat t${m.term} commit ${m.commit}${m.context ? ` ctx ${m.context}` : ''}`;
    case 'heartbeatResp':
      return `heartbeatResp t${m.term}${m.context ? ` ctx ${m.context}` : ''}`;
    case 'snap':
      return `snap t${m.term} at ${m.snapshot?.meta.index}`;
    case 'timeoutNow':
      return `timeoutNow t${m.term}`;
  }
}

/** Runs one seeded simulation. The same config always produces the same result and trace. */
export function runRaftSimulation(cfg: SimConfig): SimResult {
  return new Simulation(cfg).run();
}

/** The shell command that replays one run exactly (with its trace printed). */
export function replayCommand(seed: number, nodes: number, bug?: string): string {
  const bugEnv = bug === undefined ? '' : ` RAFT_SIM_BUG=${bug}`;
  return `RAFT_SIM_SEED=${seed} RAFT_SIM_NODES=${nodes}${bugEnv} npx ava tests/replica/coord/raft-simulation.test.ts`;
}
