import net from 'node:net';
import { WaterbearError } from '../../libos-host/errors.js';
import type { Prng } from '../random/prng.js';

/** Pause reading from a side once this much is queued toward the other (bounded memory). */
export const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/** Bytes of each connection's client-to-target stream kept for replays (the duplicate fault). */
export const REPLAY_RECORD_BYTES = 1024 * 1024;
/** Recorded connections kept for replays. */
export const REPLAY_RECORDINGS = 6;
/** How often a replaying proxy opens a connection that repeats an earlier connection's bytes. */
export const REPLAY_INTERVAL_MS = 700;
/** How long a replayed connection stays open (its replies are discarded). */
export const REPLAY_HOLD_MS = 2000;
/** How long connecting to the target may take before the client's connection is dropped. */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 5000;

/**
 * The faults one link can carry. "Forward" is the direction from the side that opened the
 * connection to the target; "backward" the replies. TCP never loses, duplicates or reorders
 * bytes inside one connection, so byte-level faults here are what a broken middlebox, NIC or
 * memory could do, and connection-level faults are what a network does.
 */
export interface LinkFaults {
  /** Hold every byte going forward (and connections being opened): a partition in that direction. */
  blockForward: boolean;
  /** Hold every byte coming back. */
  blockBackward: boolean;
  /** Latency added to every chunk, each direction (ms). */
  delayMs: number;
  /** Extra random latency per chunk in [0, jitterMs]; order inside a connection is kept. */
  jitterMs: number;
  /** Per chunk: the probability that one random bit of it is flipped (corruption TCP did not catch). */
  corruptProbability: number;
  /** Only chunks of at least this many bytes are corrupted (bulk replication data, not small coordination messages). */
  corruptMinBytes: number;
  /** Per chunk: the probability that the connection is torn down (both sides), i.e. dropped. */
  resetProbability: number;
  /** Replay earlier connections' forward bytes on new connections (duplicated, replayed messages). */
  replay: boolean;
}

export const NO_FAULTS: Readonly<LinkFaults> = Object.freeze({
  blockForward: false, blockBackward: false, delayMs: 0, jitterMs: 0, corruptProbability: 0, corruptMinBytes: 0, resetProbability: 0, replay: false,
});

export interface ProxyStats {
  connections: number;
  bytesForward: number;
  bytesBackward: number;
  corruptedChunks: number;
  resets: number;
  replays: number;
}

type Dir = 'forward' | 'backward';

/** One direction of one proxied connection: a time-ordered queue of chunks toward `dst`. */
class Pipe {
  private readonly queue: Array<{ at: number; data: Buffer }> = [];
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastAt = 0;
  private ended = false;
  private waitingDrain = false;
  dst: net.Socket | null = null;

  constructor(private readonly proxy: FaultProxy, private readonly conn: ProxiedConnection, readonly dir: Dir, readonly src: net.Socket) {
    src.on('data', (d: Buffer) => this.onData(d));
    src.on('end', () => { this.ended = true; this.pump(); });
  }

  private onData(d: Buffer): void {
    const f = this.proxy.faults;
    const g = this.proxy.prng;
    if (this.dir === 'forward') this.conn.record(d);
    if (f.resetProbability > 0 && g.chance(f.resetProbability)) {
      this.proxy.stats.resets++;
      this.conn.destroy();
      return;
    }
    let data = d;
    if (f.corruptProbability > 0 && d.length > 0 && d.length >= f.corruptMinBytes && g.chance(f.corruptProbability)) {
      data = Buffer.from(d);
      const bit = g.int(0, data.length * 8 - 1);
      data[bit >> 3] ^= 1 << (bit & 7);
      this.proxy.stats.corruptedChunks++;
    }
    const now = performance.now();
    const at = Math.max(now + f.delayMs + (f.jitterMs > 0 ? g.float() * f.jitterMs : 0), this.lastAt);
    this.lastAt = at;
    this.queue.push({ at, data });
    this.queued += data.length;
    if (this.queued > MAX_QUEUED_BYTES) this.src.pause();
    this.pump();
  }

  private blocked(): boolean {
    return this.dir === 'forward' ? this.proxy.faults.blockForward : this.proxy.faults.blockBackward;
  }

  /** Deliver what is due, unless this direction is blocked or the destination is not ready. */
  pump(): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    if (this.conn.closed) return;
    if (this.blocked()) { this.src.pause(); return; }
    if (this.dst === null || this.waitingDrain) return;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0].at <= now) {
      const { data } = this.queue.shift()!;
      this.queued -= data.length;
      if (this.dir === 'forward') this.proxy.stats.bytesForward += data.length; else this.proxy.stats.bytesBackward += data.length;
      if (!this.dst.write(data)) {
        this.waitingDrain = true;
        this.dst.once('drain', () => { this.waitingDrain = false; this.pump(); });
        return;
      }
    }
    if (this.queue.length > 0) {
      this.timer = setTimeout(() => { this.timer = null; this.pump(); }, Math.max(0, this.queue[0].at - now));
      return;
    }
    if (this.queued <= MAX_QUEUED_BYTES && this.src.isPaused()) this.src.resume();
    if (this.ended) { this.dst.end(); this.conn.halfDone(); }
  }

  stop(): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
  }
}

/** One client connection and its connection to the target. */
class ProxiedConnection {
  closed = false;
  private upstream: net.Socket | null = null;
  private readonly fwd: Pipe;
  private bwd: Pipe | null = null;
  private recording: Buffer[] | null = [];
  private recorded = 0;
  private halves = 0;

  constructor(private readonly proxy: FaultProxy, private readonly client: net.Socket) {
    client.on('error', () => this.destroy());
    client.on('close', () => this.destroy());
    this.fwd = new Pipe(proxy, this, 'forward', client);
    proxy.stats.connections++;
    this.connectWhenOpen();
  }

  /** A partitioned link does not even let a connection through: connect once it heals. */
  connectWhenOpen(): void {
    if (this.closed || this.upstream !== null) return;
    if (this.proxy.faults.blockForward) return; // retried by FaultProxy.set when the block lifts
    const up = net.connect({ host: this.proxy.target.host, port: this.proxy.target.port, allowHalfOpen: true });
    this.upstream = up;
    const timer = setTimeout(() => this.destroy(), UPSTREAM_CONNECT_TIMEOUT_MS);
    up.setNoDelay(true);
    up.on('connect', () => {
      clearTimeout(timer);
      this.fwd.dst = up;
      this.bwd = new Pipe(this.proxy, this, 'backward', up);
      this.bwd.dst = this.client;
      this.fwd.pump();
    });
    up.on('error', () => { clearTimeout(timer); this.destroy(); });
    up.on('close', () => { clearTimeout(timer); this.destroy(); });
  }

  record(d: Buffer): void {
    if (this.recording === null) return;
    const take = Math.min(d.length, REPLAY_RECORD_BYTES - this.recorded);
    if (take > 0) { this.recording.push(d.subarray(0, take)); this.recorded += take; }
  }

  repump(): void {
    this.connectWhenOpen();
    this.fwd.pump();
    this.bwd?.pump();
  }

  halfDone(): void {
    if (++this.halves >= 2) this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.fwd.stop();
    this.bwd?.stop();
    this.client.destroy();
    this.upstream?.destroy();
    if (this.recording !== null && this.recorded > 0) this.proxy.keepRecording(Buffer.concat(this.recording));
    this.recording = null;
    this.proxy.forget(this);
  }
}

/**
 * A TCP proxy for one directed link of the cluster (member X's connections to member Y): it
 * forwards bytes both ways and can hold them (partition, one-way or both), delay and jitter them,
 * flip bits in them, drop connections, and replay earlier connections' bytes. Faults change
 * while connections are open. Loopback only.
 */
export class FaultProxy {
  faults: LinkFaults = { ...NO_FAULTS };
  readonly stats: ProxyStats = { connections: 0, bytesForward: 0, bytesBackward: 0, corruptedChunks: 0, resets: 0, replays: 0 };
  private server: net.Server | null = null;
  private readonly conns = new Set<ProxiedConnection>();
  private readonly recordings: Buffer[] = [];
  private replayTimer: NodeJS.Timeout | null = null;
  private readonly replaySockets = new Set<net.Socket>();

  constructor(readonly name: string, readonly listen: { host: string; port: number }, readonly target: { host: string; port: number }, readonly prng: Prng) {}

  async start(): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true }, (client) => {
      client.setNoDelay(true);
      this.conns.add(new ProxiedConnection(this, client));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new WaterbearError('WB_LISTEN_FAILED', `fault proxy ${this.name} cannot listen on ${this.listen.host}:${this.listen.port}: ${err.message}`, { cause: err })));
      server.listen(this.listen.port, this.listen.host, () => resolve());
    });
  }

  /** Change the faults (merging with the current ones); held bytes flow again when a block lifts. */
  set(f: Partial<LinkFaults>): void {
    this.faults = { ...this.faults, ...f };
    for (const c of this.conns) c.repump();
    if (this.faults.replay && this.replayTimer === null) {
      this.replayTimer = setInterval(() => this.replayOnce(), REPLAY_INTERVAL_MS);
    } else if (!this.faults.replay && this.replayTimer !== null) {
      clearInterval(this.replayTimer);
      this.replayTimer = null;
    }
  }

  /** Back to a perfect link. */
  heal(): void { this.set({ ...NO_FAULTS }); }

  /** Drop every open connection now (both sides see a reset). */
  resetAll(): void {
    for (const c of [...this.conns]) { this.stats.resets++; c.destroy(); }
  }

  keepRecording(b: Buffer): void {
    this.recordings.push(b);
    while (this.recordings.length > REPLAY_RECORDINGS) this.recordings.shift();
  }

  forget(c: ProxiedConnection): void { this.conns.delete(c); }

  private replayOnce(): void {
    if (this.recordings.length === 0 || this.faults.blockForward) return;
    const bytes = this.prng.pick(this.recordings);
    this.stats.replays++;
    const s = net.connect({ host: this.target.host, port: this.target.port });
    this.replaySockets.add(s);
    s.on('data', () => { /* discard the target's replies */ });
    s.on('error', () => s.destroy());
    s.on('close', () => this.replaySockets.delete(s));
    s.on('connect', () => s.write(bytes));
    setTimeout(() => s.destroy(), REPLAY_HOLD_MS).unref();
  }

  async close(): Promise<void> {
    if (this.replayTimer !== null) clearInterval(this.replayTimer);
    this.replayTimer = null;
    for (const c of [...this.conns]) c.destroy();
    for (const s of this.replaySockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
