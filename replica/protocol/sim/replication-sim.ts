import { Mulberry32 } from '../../../libos-host/extensions/prng.js';
import { BackupProtocol, type BackupAction } from '../backup-protocol.js';
import { chainRecordAfterView } from '../chain-record-rules.js';
import { PrimaryProtocol, type PrimaryAction } from '../primary-protocol.js';
import type { View } from '../view.js';

/** A small seeded PRNG (mulberry32): the whole simulation is a function of its seed. */
export class SimRandom extends Mulberry32 {
  int(n: number): number { return Math.floor(this.next() * n); }
  chance(p: number): boolean { return this.next() < p; }
}

type Msg =
  | { kind: 'ckpt'; from: string; to: string; view: number; epoch: number; full: boolean }
  | { kind: 'ack'; from: string; to: string; view: number; epoch: number }
  | { kind: 'nack'; from: string; to: string; view: number; epoch: number }
  | { kind: 'join'; from: string; to: string };

interface Node {
  id: string;
  alive: boolean;
  primary: PrimaryProtocol | null;
  backup: BackupProtocol | null;
  /** Epoch the primary's guest is at (its next capture is epoch + 1). */
  epoch: number;
  /** Backups that must get a full image at the next capture. */
  needsFull: Set<string>;
  streams: Set<string>;
  /** The protocol asked for a capture at the next opportunity. */
  captureSoon: boolean;
  /** What its store and chain record hold: survives crashes and role changes, like the disk. */
  disk: StoredChain | null;
}

type StoredChain = { durable: number; chainPrimary: string; chainView: number };

export interface SimOptions {
  seed: number;
  replicas?: number;
  steps?: number;
  /** TEST ONLY: release on the first backup's ack instead of all backups' (a deliberately unsafe build). */
  unsafeReleaseOnAnyAck?: boolean;
  /** TEST ONLY: treat a timed-out proposal as refused, as if it could not commit later (unsafe). */
  unsafeForgetTimedOutProposals?: boolean;
  /** TEST ONLY: a backup's chain record names every view it learns, whatever its chain (unsafe). */
  unsafeChainRecordFollowsEveryView?: boolean;
  /** Chance per step that every replica crashes at once (a whole-cluster power loss; default 0.003). */
  wholeClusterCrashes?: number;
  /**
   * Chance that a primary's proposal, when the coordinator gets to it, times out instead (default
   * 0.2): the primary is told the outcome is unknown and the proposal stays in the coordinator, to
   * commit later (if the view is still the one it expects) or be lost, as a Raft entry appended
   * before a leader change may.
   */
  proposalTimeouts?: number;
}

export interface SimResult {
  violation: string | null; promotions: number; released: number; trace: string[];
  /** Whole-cluster crashes, and how many of them a takeover recovered from (before the next one). */
  wholeClusterCrashes: number; wholeClusterRecoveries: number;
}

/**
 * Simulates a cluster of primary/backup protocol instances over a lossy, reordering network and
 * a compare-and-set view register, with primary crashes, whole-cluster crashes and restarts. Invariant checked after
 * every step: a replica is only ever promoted with a state at least as new as every epoch whose
 * output any primary released (clients never see state go backwards).
 */
export function simulateReplication(o: SimOptions): SimResult {
  const rnd = new SimRandom(o.seed);
  const n = o.replicas ?? 3;
  const ids = Array.from({ length: n }, (_, i) => `r${i}`);
  let committed: View = { view: 1, primary: ids[0], backups: ids.slice(1) };
  const nodes = new Map<string, Node>();
  const net: Msg[] = [];
  /** Primaries' proposals not yet decided: the guest runs on, and acks arrive, meanwhile. */
  const proposals: { node: Node; proposer: PrimaryProtocol; expected: number; view: View }[] = [];
  /** Proposals that timed out at the proposer but may still commit. */
  const lingering: { expected: number; view: View }[] = [];
  const timeoutChance = o.proposalTimeouts ?? 0.2;
  const trace: string[] = [];
  let maxReleased = 0;
  let promotions = 0;
  let wholeCrashes = 0;
  let wholeRecoveries = 0;
  let awaitingRecovery = false;
  let violation: string | null = null;
  const log = (s: string): void => { if (trace.length < 400) trace.push(s); };

  const newNode = (id: string, disk: StoredChain | null = null): Node => ({ id, alive: true, primary: null, backup: null, epoch: 0, needsFull: new Set(), streams: new Set(), captureSoon: false, disk });
  for (const id of ids) {
    const node = newNode(id);
    if (id === committed.primary) node.primary = new PrimaryProtocol(id, committed, 0);
    else node.backup = new BackupProtocol(id, committed);
    nodes.set(id, node);
  }

  const viewWatchers = (): void => {
    for (const node of nodes.values()) {
      if (!node.alive) continue;
      if (node.primary !== null) runPrimary(node, node.primary.onViewCommitted(committed));
      else if (node.backup !== null) backupLearns(node);
    }
  };

  const cas = (expected: number, next: View): boolean => {
    if (committed.view !== expected) return false;
    committed = next;
    log(`commit view ${next.view} primary=${next.primary} backups=[${next.backups}]`);
    return true;
  };

  /** A backup learns the committed view; its chain record follows, as the driver's does. */
  function backupLearns(node: Node): void {
    runBackup(node, node.backup!.onViewCommitted(committed));
    if (node.backup === null || node.disk === null) return;
    if (o.unsafeChainRecordFollowsEveryView === true) { node.disk = { ...node.disk, chainView: committed.view }; return; }
    const next = chainRecordAfterView({ primary: node.disk.chainPrimary, view: node.disk.chainView }, committed, node.backup.chainOf);
    if (next !== null) node.disk = { ...node.disk, chainView: next.view };
  }

  function runPrimary(node: Node, actions: PrimaryAction[]): void {
    runPrimaryActions(node, actions);
    // Passing through (unprotected), output leaves without a 'release' action: count it too.
    if (node.primary !== null && node.primary.releasedEpoch > maxReleased) maxReleased = node.primary.releasedEpoch;
  }

  function runPrimaryActions(node: Node, actions: PrimaryAction[]): void {
    for (const a of actions) {
      switch (a.kind) {
        case 'release':
          if (a.epoch > maxReleased) maxReleased = a.epoch;
          log(`${node.id} release ${a.epoch}`);
          break;
        case 'passthrough': break; // what it lets out is counted below, from the protocol's released epoch
        case 'propose':
          proposals.push({ node, proposer: node.primary!, expected: node.primary!.currentView.view, view: a.view });
          break;
        case 'fence':
          log(`${node.id} fenced: ${a.reason}`);
          node.primary = null;
          node.backup = new BackupProtocol(node.id, null, node.disk ?? undefined);
          backupLearns(node);
          return;
        case 'stream-to': node.streams.add(a.backup); node.needsFull.add(a.backup); break;
        case 'stop-stream': node.streams.delete(a.backup); break;
        case 'checkpoint': node.captureSoon = true; break;
      }
    }
  }

  function runBackup(node: Node, actions: BackupAction[]): void {
    const b = node.backup!;
    for (const a of actions) {
      switch (a.kind) {
        case 'apply': log(`${node.id} apply ${a.epoch} full=${a.full}`);
          // Applying succeeds at once in the model; a real store may take longer (messages reorder).
          runBackup(node, b.onApplied(a.epoch, a.full));
          break;
        case 'ack': log(`${node.id} ack ${a.epoch} view ${a.view}`);
          node.disk = { durable: a.epoch, chainPrimary: b.chainOf!, chainView: a.view }; net.push({ kind: 'ack', from: node.id, to: b.currentView!.primary, view: a.view, epoch: a.epoch }); break;
        case 'nack': {
          const to = b.currentView?.primary;
          if (to !== undefined) net.push({ kind: 'nack', from: node.id, to, view: a.view, epoch: a.epoch });
          break;
        }
        case 'propose': {
          const ok = cas(b.currentView!.view, a.view);
          if (!ok) runBackup(node, b.onProposalFailed());
          viewWatchers();
          break;
        }
        case 'promote':
          promotions++;
          if (a.epoch < maxReleased && violation === null) {
            violation = `${node.id} promoted in view ${a.view.view} with epoch ${a.epoch}, but epoch ${maxReleased}'s output was already released`;
          }
          log(`${node.id} promoted with epoch ${a.epoch}`);
          if (awaitingRecovery) { wholeRecoveries++; awaitingRecovery = false; }
          node.backup = null;
          node.epoch = a.epoch;
          node.primary = new PrimaryProtocol(node.id, a.view, a.epoch);
          if (o.unsafeReleaseOnAnyAck === true) unsafe(node.primary);
          runPrimary(node, node.primary.start());
          return;
        case 'join': net.push({ kind: 'join', from: node.id, to: a.primary }); break;
        case 'demote': log(`${node.id} demoted: ${a.reason}`); break;
      }
    }
  }

  const first = nodes.get(ids[0])!;
  if (o.unsafeReleaseOnAnyAck === true) unsafe(first.primary!);
  runPrimary(first, first.primary!.start());

  const steps = o.steps ?? 400;
  /** The coordinator decides a proposal: it commits, is refused, or times out (and may commit later). */
  const decide = (): void => {
    const { node, proposer, expected, view } = proposals.splice(rnd.int(proposals.length), 1)[0];
    const current = (): boolean => node.alive && node.primary === proposer;
    if (rnd.chance(timeoutChance)) {
      lingering.push({ expected, view });
      log(`${node.id} proposal of view ${view.view} backups=[${view.backups}] timed out`);
      if (current()) runPrimary(node, proposer.onProposalFailed(o.unsafeForgetTimedOutProposals === true));
      return;
    }
    const ok = cas(expected, view);
    if (!ok && current()) runPrimary(node, proposer.onProposalFailed(true));
    viewWatchers();
  };

  for (let step = 0; step < steps && violation === null; step++) {
    if (proposals.length > 0 && rnd.chance(0.3)) { decide(); continue; }
    if (lingering.length > 0 && rnd.chance(0.05)) {
      const { expected, view } = lingering.splice(rnd.int(lingering.length), 1)[0];
      if (rnd.chance(0.7) && cas(expected, view)) { log(`(view ${view.view} committed late)`); viewWatchers(); }
      continue;
    }
    if (rnd.chance(o.wholeClusterCrashes ?? 0.003)) {
      // Every replica dies at once; the restart steps below bring them back one by one with
      // what their disks hold (chain records included).
      for (const x of nodes.values()) x.alive = false;
      wholeCrashes++;
      awaitingRecovery = true;
      log('whole cluster crashed');
      continue;
    }
    const r = rnd.next();
    const primaryNode = [...nodes.values()].find((x) => x.alive && x.primary !== null);
    if ((r < 0.3 || primaryNode?.captureSoon === true) && primaryNode !== undefined) {
      primaryNode.captureSoon = false;
      // The primary's guest ends an epoch: capture and ship to every stream.
      const p = primaryNode.primary!;
      primaryNode.epoch++;
      const e = primaryNode.epoch;
      for (const to of primaryNode.streams) {
        const full = primaryNode.needsFull.delete(to);
        net.push({ kind: 'ckpt', from: primaryNode.id, to, view: p.currentView.view, epoch: e, full });
      }
      runPrimary(primaryNode, p.onCaptured(e));
    } else if (r < 0.8 && net.length > 0) {
      // Deliver a random message (reordering); sometimes lose it; sometimes duplicate it.
      const i = rnd.int(net.length);
      const m = net[i];
      if (!rnd.chance(0.15)) net.splice(i, 1);
      if (rnd.chance(0.05)) continue;
      const to = nodes.get(m.to);
      if (to === undefined || !to.alive) continue;
      if (m.kind === 'ckpt' && to.backup !== null) runBackup(to, to.backup.onCheckpoint(m.from, m.view, m.epoch, m.full));
      else if (m.kind === 'ack' && to.primary !== null) runPrimary(to, to.primary.onAck(m.from, m.view, m.epoch));
      else if (m.kind === 'nack' && to.primary !== null) to.needsFull.add(m.from);
      else if (m.kind === 'join' && to.primary !== null) runPrimary(to, to.primary.onJoinRequest(m.from));
    } else if (r < 0.815 && primaryNode !== undefined && step > 40) {
      // kill -9 the primary; its backups notice (heartbeat timeout + lapsed lease).
      primaryNode.alive = false;
      log(`${primaryNode.id} crashed`);
      for (const x of nodes.values()) if (x.alive && x.backup !== null) runBackup(x, x.backup.onPrimaryDead());
    } else if (r < 0.87) {
      // A dead replica restarts with what its disk holds and rejoins as a backup.
      const dead = [...nodes.values()].filter((x) => !x.alive);
      if (dead.length > 0) {
        const d = dead[rnd.int(dead.length)];
        const fresh = newNode(d.id, d.disk);
        fresh.backup = new BackupProtocol(d.id, null, d.disk ?? undefined);
        nodes.set(d.id, fresh);
        log(`${d.id} restarted`);
        backupLearns(fresh);
      }
    } else if (r < 0.89 && primaryNode !== undefined) {
      // A backup (or joiner) stops answering: the primary drops it.
      const others = ids.filter((id) => id !== primaryNode.id);
      runPrimary(primaryNode, primaryNode.primary!.onBackupFailed(others[rnd.int(others.length)]));
    } else if (r < 0.895 && primaryNode !== undefined) {
      // A planned switchover to a backup (the protocol refuses it until every backup acknowledged
      // everything captured). The old primary becomes a backup with whatever its disk holds.
      const p = primaryNode.primary!;
      const bs = p.currentView.backups;
      if (bs.length > 0) {
        const target = bs[rnd.int(bs.length)];
        const out = p.onSwitchover(target);
        if (typeof out !== 'string') { log(`${primaryNode.id} switchover to ${target}`); runPrimary(primaryNode, out); }
      }
    } else if (r < 0.9) {
      // A backup wrongly suspects a live primary (partitioned from it and the lease lapsed).
      const bs = [...nodes.values()].filter((x) => x.alive && x.backup !== null);
      if (bs.length > 0) { const x = bs[rnd.int(bs.length)]; log(`${x.id} suspects the primary`); runBackup(x, x.backup!.onPrimaryDead()); }
    } else {
      // Backups that lost their primary (e.g. after a failed takeover) try again.
      if (primaryNode === undefined) {
        for (const x of nodes.values()) if (x.alive && x.backup !== null) runBackup(x, x.backup.onPrimaryDead());
      } else {
        runPrimary(primaryNode, primaryNode.primary!.onTick()); // the driver's periodic tick
      }
    }
  }
  return { violation, promotions, released: maxReleased, trace, wholeClusterCrashes: wholeCrashes, wholeClusterRecoveries: wholeRecoveries };
}

/** Patch a protocol instance to release on any single ack (the deliberately broken build). */
function unsafe(p: PrimaryProtocol): void {
  const original = p.onAck.bind(p);
  p.onAck = (from, view, epoch) => {
    const out = original(from, view, epoch);
    if (view === p.currentView.view && p.currentView.backups.includes(from)) out.push({ kind: 'release', epoch });
    return out;
  };
}
