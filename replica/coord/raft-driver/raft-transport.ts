/**
 * Outbound side of the coordination transport: one gRPC client per peer, one long-lived client stream
 * (`CoordRaft/Send`) per peer for Raft messages, and unary calls for forwarded client requests.
 *
 * Raft tolerates lost, duplicated and reordered messages, so the transport never blocks the driver and
 * never retries a Raft message: a batch for a peer whose stream is down, or whose stream has more than
 * MAX_QUEUED_BATCHES_PER_PEER batches buffered, is dropped; the core re-sends (heartbeats, probes, vote
 * retries). A failed stream is re-opened on the next batch after PEER_RECONNECT_DELAY_MS.
 */
import * as grpc from '@grpc/grpc-js';
import { WaterbearError } from '../../../libos-host/errors.js';
import type { Logger } from '../../log.js';
import type { Message, NodeId } from '../raft/raft-types.js';
import { MAX_QUEUED_BATCHES_PER_PEER, PEER_RECONNECT_DELAY_MS, type RaftPeer, type UnsafeTestNetwork } from './raft-driver-options.js';
import {
  COORD_FORMAT_VERSION,
  createCoordClient,
  messageToWire,
  WB_CODE_METADATA_KEY,
  type CoordRaftClient,
  type RaftBatch,
} from './raft-wire.js';
import { WEDGED_CONNECTION_MS, WedgeDetector } from '../../wire/wedged-connection.js';

type UnaryName = 'propose' | 'readIndex' | 'keepAlive' | 'leaseExpiry' | 'status';

/** Counters for status and tests. */
export interface TransportStats {
  batchesSent: number;
  batchesDropped: number;
  streamsOpened: number;
  streamFailures: number;
  /** Connections replaced because every request on them timed out (see WEDGED_CONNECTION_MS). */
  wedgedReconnects: number;
}

class PeerLink {
  private client: CoordRaftClient | null = null;
  private stream: grpc.ClientWritableStream<RaftBatch> | null = null;
  private retryAtMs = 0;
  private lastRefusal = '';
  /** Since when every batch found the stream's queue full (null: it has room). */
  private fullSinceMs: number | null = null;
  /** Says when only timeouts have come back for long enough to replace the connection. */
  private readonly wedge = new WedgeDetector();

  constructor(
    readonly peer: RaftPeer,
    private readonly credentials: grpc.ChannelCredentials,
    private readonly stats: TransportStats,
    private readonly log: Logger | undefined,
  ) {}

  rpc(): CoordRaftClient {
    if (this.client === null) this.client = createCoordClient(this.peer.address, this.credentials);
    return this.client;
  }

  /** A request on this link was answered (any answer: the connection carries data). */
  answered(): void { this.wedge.answered(); }

  /**
   * The stream's queue is full: nothing it was given has left for a while. A leader's stream to a
   * follower carries only one-way messages, and a follower that hears no leader makes no calls
   * whose timeouts `timedOut` would see, so a wedged stream would isolate it for good (chaos
   * finding 14: 150 s). After WEDGED_CONNECTION_MS of a full queue, reconnect.
   */
  private notDraining(): void {
    const now = performance.now();
    this.fullSinceMs ??= now;
    const ms = now - this.fullSinceMs;
    if (ms < WEDGED_CONNECTION_MS) return;
    this.fullSinceMs = null;
    this.replaceConnection({ ms: Math.round(ms), queued: MAX_QUEUED_BATCHES_PER_PEER }, 'coordination stream to peer has not drained: opening a new connection');
  }

  /** A request sent at `sentAtMs` timed out: after WEDGED_CONNECTION_MS of only that, reconnect. */
  timedOut(sentAtMs: number): void {
    const seen = this.wedge.timedOut(sentAtMs);
    if (seen === null) return;
    this.replaceConnection(seen, 'coordination peer answers nothing on this connection: opening a new one');
  }

  /** Either wedge rule fired: say why, count it, and let the next call or batch open a new connection. */
  private replaceConnection(why: Record<string, unknown>, msg: string): void {
    this.log?.warn({ peer: this.peer.id, ...why }, msg);
    this.stats.wedgedReconnects++;
    this.close();
  }

  send(batch: RaftBatch): void {
    let stream = this.stream;
    if (stream === null) {
      if (performance.now() < this.retryAtMs) {
        this.stats.batchesDropped++;
        return;
      }
      stream = this.open();
    }
    if (stream.writableLength >= MAX_QUEUED_BATCHES_PER_PEER) {
      this.stats.batchesDropped++;
      this.notDraining();
      return;
    }
    this.fullSinceMs = null;
    stream.write(batch);
    this.stats.batchesSent++;
  }

  private open(): grpc.ClientWritableStream<RaftBatch> {
    this.stats.streamsOpened++;
    const stream = this.rpc().send((err) => {
      if (this.stream === stream) {
        this.stream = null;
        this.retryAtMs = performance.now() + PEER_RECONNECT_DELAY_MS;
      }
      if (err === null) return;
      this.stats.streamFailures++;
      const code = err.metadata?.get(WB_CODE_METADATA_KEY)?.[0];
      if (code !== undefined) {
        // The peer refused us (version, cluster or membership: an operator must fix the configuration;
        // or a batch of ours arrived corrupt: its message says what to check).
        const text = `${String(code)}: ${err.details}`;
        if (text !== this.lastRefusal) this.log?.error({ peer: this.peer.id, code, reason: err.details }, 'coordination peer refused our messages');
        this.lastRefusal = text;
      } else {
        this.log?.debug({ peer: this.peer.id, err: err.details }, 'coordination stream to peer failed');
      }
    });
    stream.on('error', () => { /* reported through the callback */ });
    this.stream = stream;
    return stream;
  }

  close(): void {
    this.stream?.cancel();
    this.stream = null;
    this.client?.close();
    this.client = null;
  }
}

/** The outbound transport of one member. */
export class PeerTransport {
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly warnedUnknown = new Set<NodeId>();
  private closed = false;
  readonly stats: TransportStats = { batchesSent: 0, batchesDropped: 0, streamsOpened: 0, streamFailures: 0, wedgedReconnects: 0 };

  constructor(
    private readonly selfId: NodeId,
    private readonly clusterName: string,
    peers: readonly RaftPeer[],
    credentials: grpc.ChannelCredentials,
    private readonly testNetwork: UnsafeTestNetwork | undefined,
    private readonly log: Logger | undefined,
  ) {
    for (const p of peers) if (p.id !== selfId) this.links.set(p.id, new PeerLink(p, credentials, this.stats, log));
  }

  /** True when the test-only network drops everything to and from `peer`. */
  isDropped(peer: NodeId): boolean {
    return this.testNetwork?.dropped.has(peer) ?? false;
  }

  /** Sends one Ready's messages: one batch per destination, in order. Never throws, never blocks. */
  send(messages: readonly Message[]): void {
    if (this.closed) return;
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of messages) {
      let list = byPeer.get(m.to);
      if (list === undefined) byPeer.set(m.to, (list = []));
      list.push(m);
    }
    for (const [to, list] of byPeer) {
      const link = this.links.get(to);
      if (link === undefined) {
        if (!this.warnedUnknown.has(to)) this.log?.warn({ peer: to }, 'raft wants to talk to a member with no known address; add it to the cluster file');
        this.warnedUnknown.add(to);
        continue;
      }
      if (this.isDropped(to)) {
        this.stats.batchesDropped++;
        continue;
      }
      link.send({ formatVersion: COORD_FORMAT_VERSION, clusterId: this.clusterName, from: this.selfId, messages: list.map(messageToWire) });
    }
  }

  /**
   * One unary call to `peer`, bounded by `timeoutMs`.
   * @throws WaterbearError WB_TIMEOUT when the deadline passed (the request may have been processed);
   *   WB_COORD_UNAVAILABLE with details.transport (and details.ambiguous when it may have been processed).
   */
  unary<Req, Res>(peer: NodeId, name: UnaryName, request: Req, timeoutMs: number): Promise<Res> {
    const link = this.links.get(peer);
    if (this.closed) return Promise.reject(new WaterbearError('WB_COORD_UNAVAILABLE', 'the coordination member is closed'));
    if (link === undefined) {
      return Promise.reject(new WaterbearError('WB_COORD_UNAVAILABLE', `no address for coordination member ${peer}`, { details: { transport: true, ambiguous: false } }));
    }
    if (this.isDropped(peer)) {
      return Promise.reject(new WaterbearError('WB_COORD_UNAVAILABLE', `coordination member ${peer} is unreachable (test partition)`, { details: { transport: true, ambiguous: false } }));
    }
    const client = link.rpc();
    const fn = client[name] as unknown as (req: Req, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall;
    const sentAtMs = performance.now();
    return new Promise<Res>((resolve, reject) => {
      fn.call(client, request, { deadline: Date.now() + Math.max(1, timeoutMs) }, (err, res) => {
        if (err?.code === grpc.status.DEADLINE_EXCEEDED) link.timedOut(sentAtMs);
        else if (err === null || err.metadata?.get(WB_CODE_METADATA_KEY)?.[0] !== undefined) link.answered();
        if (err === null && res !== undefined) {
          resolve(res);
          return;
        }
        if (err?.code === grpc.status.DEADLINE_EXCEEDED) {
          reject(new WaterbearError('WB_TIMEOUT', `coordination member ${peer} did not answer ${name} in ${Math.round(timeoutMs)} ms`, { cause: err, details: { transport: true, ambiguous: true } }));
          return;
        }
        // UNAVAILABLE before the request was sent is the common case (peer down); we cannot tell for sure.
        const ambiguous = err?.code !== grpc.status.UNAVAILABLE || !/connect|No connection|ECONNREFUSED/i.test(err?.details ?? '');
        reject(new WaterbearError('WB_COORD_UNAVAILABLE', `coordination member ${peer} is unreachable: ${err?.details ?? 'no reply'}`, { cause: err, details: { transport: true, ambiguous } }));
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.links.values()) l.close();
  }
}
