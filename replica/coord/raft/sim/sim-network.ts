/**
 * The simulated network: messages in flight with a delivery time, and the faults a real network
 * makes — loss, duplication, delay, reordering, and partitions (symmetric or one-way) that come and
 * go. All choices come from the run's seeded generator.
 */
import type { SeededRandom } from '../raft-random.js';
import type { Message, NodeId } from '../raft-types.js';

/** Fault rates of the network (probabilities per message; delays in simulation steps). */
export interface NetworkFaults {
  loss: number;
  duplicate: number;
  /** Probability that a message takes a long path (reordering it behind later ones). */
  reorder: number;
  /** Normal delay is 1..baseDelaySteps steps. */
  baseDelaySteps: number;
  /** A long path adds up to this many steps. */
  longDelaySteps: number;
}

export class SimNetwork {
  /** Delivery step → messages due then. */
  private readonly due = new Map<number, Message[]>();
  /** Blocked directed links "from>to". */
  private readonly blocked = new Set<string>();
  inFlight = 0;
  sent = 0;
  dropped = 0;

  constructor(
    private readonly rng: SeededRandom,
    public faults: NetworkFaults,
  ) {}

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.size > 0 && this.blocked.has(`${from}>${to}`);
  }

  block(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  /** Cuts every link between the two groups, both ways. */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) for (const y of b) {
      this.block(x, y);
      this.block(y, x);
    }
  }

  healAll(): void {
    this.blocked.clear();
  }

  get partitioned(): boolean {
    return this.blocked.size > 0;
  }

  /** Puts a message on the wire at step `now`. */
  send(m: Message, now: number): void {
    this.sent++;
    const f = this.faults;
    if (this.isBlocked(m.from, m.to) || (f.loss > 0 && this.rng.chance(f.loss))) {
      this.dropped++;
      return;
    }
    this.enqueue(m, now + this.delay());
    if (f.duplicate > 0 && this.rng.chance(f.duplicate)) this.enqueue(m, now + this.delay());
  }

  private delay(): number {
    const f = this.faults;
    let d = 1 + this.rng.nextInt(f.baseDelaySteps);
    if (f.reorder > 0 && this.rng.chance(f.reorder)) d += 1 + this.rng.nextInt(f.longDelaySteps);
    return d;
  }

  private enqueue(m: Message, at: number): void {
    let list = this.due.get(at);
    if (list === undefined) {
      list = [];
      this.due.set(at, list);
    }
    list.push(m);
    this.inFlight++;
  }

  /** Messages due at step `now`, in a random order; links cut meanwhile drop theirs. */
  take(now: number): Message[] {
    const list = this.due.get(now);
    if (list === undefined) return [];
    this.due.delete(now);
    this.inFlight -= list.length;
    for (let i = list.length - 1; i > 0; i--) {
      const j = this.rng.nextInt(i + 1);
      const t = list[i];
      list[i] = list[j];
      list[j] = t;
    }
    if (this.blocked.size === 0) return list;
    const out = list.filter((m) => !this.isBlocked(m.from, m.to));
    this.dropped += list.length - out.length;
    return out;
  }
}
