/**
 * A tiny deterministic driver for scripted Raft scenarios in unit tests: in-memory storage, a FIFO
 * network with per-message filters, crash/restart, and the exact Ready contract (persist, send, apply).
 */
import { RaftNode, type RaftNodeInit } from '../../../../replica/coord/raft/raft-node.js';
import type { RaftOptions } from '../../../../replica/coord/raft/raft-config.js';
import { SeededRandom } from '../../../../replica/coord/raft/raft-random.js';
import { MemoryRaftStorage } from '../../../../replica/coord/raft/raft-storage.js';
import type { Entry, Message, NodeId, ReadState, Ready, Snapshot } from '../../../../replica/coord/raft/raft-types.js';
import type { UnsafeRaftTestBugs } from '../../../../replica/coord/raft/raft-unsafe-test-bugs.js';

export interface TestNode {
  readonly id: NodeId;
  raft: RaftNode | null;
  readonly storage: MemoryRaftStorage;
  /** Every entry applied, by index (survives crashes: it is the test's record, not node state). */
  readonly applied: Map<number, Entry>;
  readonly readStates: ReadState[];
  readonly readies: Ready[];
  installedSnapshots: Snapshot[];
}

export interface TestClusterOptions {
  readonly options?: RaftOptions;
  readonly bugs?: UnsafeRaftTestBugs;
  readonly seed?: number;
  /** Nodes that exist but are not bootstrap voters (they join later). */
  readonly joiners?: readonly NodeId[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(s: string): Uint8Array {
  return encoder.encode(s);
}

export function text(b: Uint8Array): string {
  return decoder.decode(b);
}

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent and not yet delivered, in order. */
  queue: Message[] = [];
  /** Every message ever sent, for assertions. */
  readonly sent: Message[] = [];
  /** Messages for which this returns true are dropped. */
  dropIf: (m: Message) => boolean = () => false;
  private readonly blocked = new Set<string>();
  private readonly rng: SeededRandom;

  constructor(
    readonly voters: readonly NodeId[],
    private readonly opts: TestClusterOptions = {},
  ) {
    this.rng = new SeededRandom(opts.seed ?? 1);
    for (const id of [...voters, ...(opts.joiners ?? [])]) {
      const node: TestNode = {
        id,
        raft: null,
        storage: new MemoryRaftStorage(),
        applied: new Map(),
        readStates: [],
        readies: [],
        installedSnapshots: [],
      };
      this.nodes.set(id, node);
      this.start(node, voters.includes(id));
    }
  }

  private start(node: TestNode, bootstrap: boolean): void {
    const init: RaftNodeInit = {
      id: node.id,
      persisted: node.storage.load(),
      random: this.rng.fork(),
      ...(this.opts.options !== undefined ? { options: this.opts.options } : {}),
      ...(bootstrap ? { bootstrapVoters: this.voters } : {}),
      ...(this.opts.bugs !== undefined ? { unsafeTestBugs: this.opts.bugs } : {}),
    };
    node.raft = new RaftNode(init);
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: NodeId): RaftNode {
    const r = this.node(id).raft;
    if (r === null) throw new Error(`${id} is down`);
    return r;
  }

  crash(id: NodeId): void {
    this.node(id).raft = null;
    this.queue = this.queue.filter((m) => m.to !== id);
  }

  restart(id: NodeId): void {
    this.start(this.node(id), false);
  }

  /** Cuts `id` off from everyone, both ways. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.blocked.add(`${id}>${other}`);
      this.blocked.add(`${other}>${id}`);
    }
  }

  /** Cuts the one-way link from → to. */
  cut(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  heal(): void {
    this.blocked.clear();
    this.dropIf = () => false;
  }

  /** Processes every pending Ready: persist, then send, then apply. */
  processReadies(): void {
    for (const node of this.nodes.values()) {
      const raft = node.raft;
      if (raft === null || !raft.hasReady()) continue;
      const rd = raft.ready();
      node.readies.push(rd);
      node.storage.saveSync(rd);
      for (const m of rd.messages) {
        this.sent.push(m);
        if (this.blocked.has(`${m.from}>${m.to}`) || this.dropIf(m)) continue;
        this.queue.push(m);
      }
      if (rd.snapshot !== null) node.installedSnapshots.push(rd.snapshot);
      for (const e of rd.committedEntries) node.applied.set(e.index, e);
      node.readStates.push(...rd.readStates);
    }
  }

  /** Delivers one queued message (FIFO). Returns false when none is left. */
  deliverOne(): boolean {
    const m = this.queue.shift();
    if (m === undefined) return false;
    const target = this.nodes.get(m.to)?.raft;
    if (target !== null && target !== undefined) target.step(m);
    return true;
  }

  /** Runs the network until no message is in flight (bounded). */
  stabilize(maxMessages = 100_000): void {
    for (let i = 0; i < maxMessages; i++) {
      this.processReadies();
      if (!this.deliverOne()) {
        this.processReadies();
        if (this.queue.length === 0) return;
      }
    }
    throw new Error('cluster did not stabilize');
  }

  /** Ticks every live node `n` times, stabilizing after each tick. */
  tick(n = 1, only?: readonly NodeId[]): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) {
        if (node.raft !== null && (only === undefined || only.includes(node.id))) node.raft.tick();
      }
      this.stabilize();
    }
  }

  /** Makes `id` campaign and runs the network until quiet. */
  elect(id: NodeId): void {
    this.raft(id).campaign();
    this.stabilize();
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raft?.currentRole === 'leader').map((n) => n.id);
  }

  /** Applied normal entries with data, as text, in index order. */
  appliedValues(id: NodeId): string[] {
    return [...this.node(id).applied.values()]
      .filter((e) => e.type === 'normal' && e.data.length > 0)
      .sort((a, b) => a.index - b.index)
      .map((e) => text(e.data));
  }
}
