/**
 * The Raft safety invariants (Raft paper, Figure 3), checked incrementally on every step of a
 * simulated run, plus the linearizability of ReadIndex reads.
 *
 * - election safety: at most one leader per term, over the whole run;
 * - log matching: two entries with the same index and term carry the same command and follow entries
 *   of the same term (checked on every entry handed out for persistence; by induction the logs are
 *   then identical up to there);
 * - leader completeness: a new leader's log holds every entry committed so far;
 * - state machine safety: no two nodes apply different entries at one index (checked on a running
 *   digest of everything applied, so whole histories are compared, including across snapshots);
 * - read linearizability: a confirmed ReadIndex is at least the highest index any node had seen
 *   committed when the read was requested.
 */
import type { Entry, NodeId } from '../raft-types.js';

export const INVARIANTS = [
  'election-safety',
  'log-matching',
  'leader-completeness',
  'state-machine-safety',
  'read-linearizability',
  'liveness',
  'node-assertion',
] as const;

export type InvariantName = (typeof INVARIANTS)[number];

/** Thrown inside a run when an invariant breaks; the run stops at once. */
export class InvariantViolation extends Error {
  constructor(
    readonly invariant: InvariantName,
    message: string,
  ) {
    super(`${invariant}: ${message}`);
    this.name = 'InvariantViolation';
  }
}

/** A node's log as the checker sees it. */
export interface CheckedLog {
  termAt(index: number): number | undefined;
  readonly snapshotIndex: number;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** FNV-1a step over a 32-bit value. */
export function mix(h: number, v: number): number {
  h ^= v & 0xff;
  h = Math.imul(h, 0x01000193);
  h ^= (v >>> 8) & 0xff;
  h = Math.imul(h, 0x01000193);
  h ^= (v >>> 16) & 0xff;
  h = Math.imul(h, 0x01000193);
  h ^= v >>> 24;
  return Math.imul(h, 0x01000193) >>> 0;
}

/** The digest of an applied history after applying `e` on top of `prev`. */
export function digestEntry(prev: number, e: Entry): number {
  let h = mix(mix(prev, e.index), e.term);
  h = mix(h, e.type === 'conf' ? 1 : 0);
  for (let i = 0; i < e.data.length; i++) {
    h ^= e.data[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export const EMPTY_DIGEST = 0x811c9dc5;

export class SimChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** index → term → the entry first seen there and the term of the entry before it. */
  private readonly logEntries = new Map<number, Map<number, { entry: Entry; prevTerm: number | undefined }>>();
  /** Committed (applied somewhere) entries: term and the history digest after each index. */
  private readonly committedTerm: number[] = [];
  private readonly committedDigest: number[] = [];
  private maxCommittedIndex = 0;

  /** Highest index any node has applied (or restored) so far. */
  get maxCommitted(): number {
    return this.maxCommittedIndex;
  }

  /** Election safety; called whenever a node is seen as leader. Returns true when this (term, node) is new. */
  onLeader(id: NodeId, term: number, log: CheckedLog): boolean {
    const known = this.leaderOfTerm.get(term);
    if (known === id) return false;
    if (known !== undefined) throw new InvariantViolation('election-safety', `term ${term} has two leaders: ${known} and ${id}`);
    this.leaderOfTerm.set(term, id);
    this.checkLeaderCompleteness(id, term, log);
    return true;
  }

  private checkLeaderCompleteness(id: NodeId, term: number, log: CheckedLog): void {
    for (let i = log.snapshotIndex + 1; i <= this.maxCommittedIndex; i++) {
      const want = this.committedTerm[i];
      if (want === undefined) continue;
      const have = log.termAt(i);
      if (have !== want) {
        throw new InvariantViolation(
          'leader-completeness',
          `${id} became leader of term ${term} without committed entry ${i} (term ${want}); its log has ${have === undefined ? 'nothing' : `term ${have}`} there`,
        );
      }
    }
  }

  /** Log matching; called with every entry a node hands out for persistence and the term of the entry before it. */
  onLogEntry(id: NodeId, e: Entry, prevTerm: number | undefined): void {
    let byTerm = this.logEntries.get(e.index);
    if (byTerm === undefined) {
      byTerm = new Map();
      this.logEntries.set(e.index, byTerm);
    }
    const seen = byTerm.get(e.term);
    if (seen === undefined) {
      byTerm.set(e.term, { entry: e, prevTerm });
      return;
    }
    if (seen.entry.type !== e.type || !bytesEqual(seen.entry.data, e.data)) {
      throw new InvariantViolation('log-matching', `${id} has a different entry at index ${e.index} term ${e.term} than another node`);
    }
    if (seen.prevTerm !== undefined && prevTerm !== undefined && seen.prevTerm !== prevTerm) {
      throw new InvariantViolation(
        'log-matching',
        `${id}'s entry ${e.index} (term ${e.term}) follows an entry of term ${prevTerm}; another node's follows term ${seen.prevTerm}`,
      );
    }
    if (seen.prevTerm === undefined && prevTerm !== undefined) seen.prevTerm = prevTerm;
  }

  /** State machine safety; called when a node applies entry `e`, its history digest becoming `digest`. */
  onApply(id: NodeId, e: Entry, digest: number): void {
    const term = this.committedTerm[e.index];
    if (term === undefined) {
      this.committedTerm[e.index] = e.term;
      this.committedDigest[e.index] = digest;
      if (e.index > this.maxCommittedIndex) this.maxCommittedIndex = e.index;
      return;
    }
    if (term !== e.term || this.committedDigest[e.index] !== digest) {
      throw new InvariantViolation(
        'state-machine-safety',
        `${id} applied entry ${e.index} of term ${e.term} (history digest ${digest.toString(16)}); another node applied term ${term} (digest ${this.committedDigest[e.index].toString(16)})`,
      );
    }
  }

  /** State machine safety for a restored snapshot: its history must match what others applied at its index. */
  onRestore(id: NodeId, index: number, term: number, digest: number): void {
    if (index === 0) return;
    const known = this.committedTerm[index];
    if (known === undefined) {
      this.committedTerm[index] = term;
      this.committedDigest[index] = digest;
      if (index > this.maxCommittedIndex) this.maxCommittedIndex = index;
      return;
    }
    if (known !== term || this.committedDigest[index] !== digest) {
      throw new InvariantViolation('state-machine-safety', `${id} restored a snapshot at ${index} whose history differs from what another node applied`);
    }
  }

  /** Read linearizability: `index` answered a read requested when `maxCommittedAtRequest` was committed. */
  onReadState(id: NodeId, context: string, index: number, maxCommittedAtRequest: number): void {
    if (index < maxCommittedAtRequest) {
      throw new InvariantViolation(
        'read-linearizability',
        `${id} confirmed read ${context} at index ${index}, but index ${maxCommittedAtRequest} was already committed when it was requested (stale read)`,
      );
    }
  }
}
