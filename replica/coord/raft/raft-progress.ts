/**
 * The leader's view of one follower's replication (etcd's tracker.Progress):
 * - `probe`: we do not know where the follower's log matches ours; send one AppendEntries at a time
 *   and back off on rejection (fast backtracking by term);
 * - `replicate`: the follower is in sync; pipeline appends optimistically, bounded by the inflight window;
 * - `snapshot`: the follower needs a snapshot; nothing else is sent until it is acknowledged or retried.
 */
import { invariant } from './raft-invariant.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** Last indexes of the unacknowledged AppendEntries sent while pipelining, oldest first. */
export class Inflights {
  private readonly items: number[] = [];

  constructor(private readonly capacity: number) {}

  add(lastIndex: number): void {
    invariant(!this.full(), 'inflight window overflow');
    this.items.push(lastIndex);
  }

  /** Frees every message whose last index is <= `index` (acknowledged). */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.items.length && this.items[n] <= index) n++;
    if (n > 0) this.items.splice(0, n);
  }

  freeFirstOne(): void {
    this.items.shift();
  }

  full(): boolean {
    return this.items.length >= this.capacity;
  }

  get count(): number {
    return this.items.length;
  }

  reset(): void {
    this.items.length = 0;
  }
}

export class Progress {
  /** Highest index known to be replicated on the follower. */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append is outstanding; wait for its answer or the next heartbeat answer. */
  probeSent = false;
  /** Heard from since the last check-quorum round. */
  recentActive = true;
  /** In snapshot state: index of the snapshot sent. */
  pendingSnapshot = 0;
  /** In snapshot state: ticks since the snapshot was sent. */
  snapshotTicks = 0;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.inflights.reset();
  }

  becomeProbe(): void {
    this.resetState('probe');
    this.next = this.match + 1;
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** An acknowledgement up to `index`. Returns true when `match` moved forward. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of the append whose previous index was `rejected`; `matchHint` is where the logs may
   * match (from the follower's hint). Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Records that an append ending at `lastIndex` was sent (or an empty probe when `lastIndex` is undefined). */
  sentAppend(lastIndex: number | undefined): void {
    if (this.state === 'replicate') {
      if (lastIndex !== undefined) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** True when nothing more may be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
