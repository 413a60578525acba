/**
 * The leader's queue of ReadIndex requests waiting for leadership confirmation.
 *
 * A request records the commit index at the moment it arrived. It is confirmed when a quorum of voters
 * has answered a heartbeat that carried its context (or a later one: heartbeats carry the newest
 * pending context, and requests are confirmed in arrival order, so an acknowledgement of a later
 * request confirms every earlier one too).
 */
import type { NodeId } from './raft-types.js';

interface PendingRead {
  readonly context: string;
  readonly index: number;
  readonly acks: Set<NodeId>;
}

export class ReadOnlyQueue {
  private readonly byContext = new Map<string, PendingRead>();
  private queue: PendingRead[] = [];

  /** Queues a request; `selfAck` is the leader's own id when it is a voter. Duplicate contexts are ignored. */
  add(context: string, index: number, selfAck: NodeId | null): void {
    if (this.byContext.has(context)) return;
    const req: PendingRead = { context, index, acks: new Set(selfAck === null ? [] : [selfAck]) };
    this.byContext.set(context, req);
    this.queue.push(req);
  }

  /** Records `from`'s acknowledgement of `context`; returns the acknowledging set, or undefined when unknown. */
  ack(context: string, from: NodeId): ReadonlySet<NodeId> | undefined {
    const req = this.byContext.get(context);
    if (req === undefined) return undefined;
    req.acks.add(from);
    return req.acks;
  }

  /** Removes and returns `context`'s request and every request queued before it. */
  advance(context: string): { context: string; index: number }[] {
    const at = this.queue.findIndex((r) => r.context === context);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    for (const r of done) this.byContext.delete(r.context);
    return done.map((r) => ({ context: r.context, index: r.index }));
  }

  /** The newest pending context ('' when none), carried by every heartbeat. */
  lastPendingContext(): string {
    return this.queue.length > 0 ? this.queue[this.queue.length - 1].context : '';
  }

  get size(): number {
    return this.queue.length;
  }

  /** Drops every pending request (leadership lost). */
  reset(): void {
    this.byContext.clear();
    this.queue = [];
  }
}
