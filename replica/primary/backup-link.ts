import * as grpc from '@grpc/grpc-js';
import { CHECKPOINT_PAGE_BYTES } from '../../checkpoint/checkpoint-data.js';
import type { WaterbearError } from '../../libos-host/errors.js';
import { PRECOPY_SLICE_PAGES, type Precopy, type PrecopySlice } from './precopy.js';
import {
  CHECKPOINT_CHUNK_BYTES, REPLICATION_PROTOCOL_VERSION, ReplicaClient, protocolMismatch,
  type BackupMessage, type PrimaryMessage,
} from '../wire/replication-wire.js';
import { corruptMessage, isCorrupt, refusalOf, versionRefusalError, type OrRefused } from '../wire/refused-message.js';

/** A tick this many intervals late means our own process stalled, not the peer. */
export const STALL_FACTOR = 3;
/**
 * Pre-copy messages (1 MiB each) sent and not yet reported staged by the backup. Small, so that
 * a heartbeat never waits behind more than a few MiB on the stream, and the backup never queues
 * more than that in memory.
 */
export const PRECOPY_WINDOW_MESSAGES = 8;
/**
 * Extra silence granted per MiB the backup still has to verify and store (unacknowledged
 * checkpoints, unstaged pre-copy pages): while it applies a 32 MiB checkpoint it cannot answer
 * heartbeats, and that is work we gave it, not a sign of death. About 35 MB/s.
 */
export const LINK_GRACE_MS_PER_MIB = 30;
const MIB = 1024 * 1024;
/**
 * A backup that refuses the stream with FAILED_PRECONDITION is up and answering ("b is starting,
 * not a backup"): for this many heartbeat timeouts in a row that counts as hearing from it. A
 * backup that starts slowly under load (found: > 300 ms) was otherwise dropped from the view at
 * cluster start, leaving the primary unprotected; one that refuses for longer is dropped.
 */
export const REFUSAL_GRACE_TIMEOUTS = 10;

export interface BackupLinkEvents {
  ack(backup: string, view: number, epoch: number): void;
  nack(backup: string, epoch: number, code: string, reason: string): void;
  /** The stream broke and was reopened: the backup needs a full image on the new one. */
  reopened(backup: string, reason: string): void;
  /** The link is dead (stream error or heartbeat timeout); the primary decides what follows. */
  failed(backup: string, reason: string): void;
  /**
   * The backup sent a corrupt message (`err`: corruptMessage's, WB_PROTOCOL): none of it was
   * used, the stream is reopened (`reopened` follows). For the primary to log.
   */
  corrupt(backup: string, err: WaterbearError): void;
}

export interface BackupLinkOptions {
  self: string;
  backup: string;
  address: string;
  credentials: grpc.ChannelCredentials;
  /** The primary's current view: every message carries it (views change while a link lives). */
  view: () => number;
  imageSha256: string;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  nowMs: () => number;
}

/**
 * The primary's end of one replication stream to one backup: checkpoints in epoch order (split
 * into chunks), heartbeats, and the acknowledgements coming back. Every message carries the view.
 */
export class BackupLink {
  private readonly client: grpc.Client & { replicate(): grpc.ClientDuplexStream<PrimaryMessage, BackupMessage> };
  private stream: grpc.ClientDuplexStream<PrimaryMessage, BackupMessage> | null = null;
  private lastHeardMs: number;
  private lastTickMs: number;
  /** When the backup started refusing the stream (null: it is not refusing). */
  private refusingSinceMs: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Until a full image was sent on this stream (again after a nack or a reopened stream). */
  private fullWanted = true;
  /** The full image being sent by iterative pre-copy (the driver pumps it), or null. */
  precopy: Precopy | null = null;
  /** Pre-copy messages not yet reported staged, and who waits for one to be. */
  private precopyUnstaged = 0;
  private stagedWaiter: (() => void) | null = null;
  /**
   * Epoch of the last full image sent on this stream: the backup holds no page version older
   * than it, so only deltas against later epochs may be sent (EncodeOptions.deltasAfter).
   */
  deltasAfter = 0;
  /** Bytes written but not yet acknowledged, by epoch. */
  private readonly unacked = new Map<number, number>();
  ackedEpoch = 0;
  /** When the backup last acknowledged a checkpoint (-Infinity: never). */
  lastAckAtMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: BackupLinkOptions, private readonly events: BackupLinkEvents) {
    this.client = new ReplicaClient(o.address, o.credentials, {
      'grpc.max_send_message_length': 16 * 1024 * 1024,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      'grpc.keepalive_time_ms': 10_000,
    }) as unknown as typeof this.client;
    this.lastHeardMs = o.nowMs();
    this.lastTickMs = this.lastHeardMs;
  }

  get backup(): string { return this.o.backup; }

  /** The next checkpoint must be a full image for this backup (and the stream can take it now). */
  get needsFull(): boolean { return this.fullWanted && this.precopy === null && this.stream !== null && !this.closed; }

  /**
   * A full image for this backup was captured and will be sent (encoding may take a few turns):
   * do not ask for another meanwhile.
   */
  fullCaptured(): void {
    this.fullWanted = false;
    this.precopy = null;
  }

  /** Send the full image by pre-copy: incremental checkpoints are not sent until its final one. */
  beginPrecopy(p: Precopy): void {
    this.precopy = p;
    this.precopyUnstaged = 0;
  }

  /** True when another pre-copy message may be sent now (the window has room). */
  get precopyWindowOpen(): boolean { return this.precopyUnstaged < PRECOPY_WINDOW_MESSAGES; }

  /** Send one pre-copy slice (check `precopyWindowOpen` first). */
  sendPrecopySlice(p: Precopy, slice: PrecopySlice): void {
    if (this.closed || this.stream === null || this.precopy !== p) return;
    const start = !p.started;
    p.started = true;
    this.precopyUnstaged++;
    this.write({ precopy: { token: p.token, start, ...slice } });
  }

  /** Call `f` once the backup reported a pre-copy message staged (or the pre-copy ended). */
  onStaged(f: () => void): void { this.stagedWaiter = f; }

  private wakeStaged(): void {
    const w = this.stagedWaiter;
    this.stagedWaiter = null;
    w?.();
  }

  /** Bytes sent but not acknowledged (for backpressure). */
  get inflightBytes(): number {
    let n = 0;
    for (const b of this.unacked.values()) n += b;
    return n;
  }

  start(): void {
    this.connect();
    this.timer = setInterval(() => this.tick(), this.o.heartbeatIntervalMs);
  }

  /**
   * Open the stream. A broken stream is reopened (every heartbeat interval) rather than declared
   * a failure: a backup that is still starting refuses or is not listening yet, and a lost TCP
   * connection is not a dead peer. Only silence for the heartbeat timeout fails the link (tick).
   */
  private connect(): void {
    const stream = this.client.replicate();
    this.stream = stream;
    stream.on('data', (m: OrRefused<BackupMessage>) => {
      if (stream !== this.stream) return;
      const refusal = refusalOf(m);
      if (refusal === null) { this.onMessage(m as BackupMessage); return; }
      if (isCorrupt(refusal)) {
        // Not an ack, nack or heartbeat of anything: the stream is reset, as for any lost stream.
        const err = corruptMessage(this.o.self, refusal, { id: this.o.backup, address: this.o.address });
        this.events.corrupt(this.o.backup, err);
        this.streamLost(stream, err.message);
        return;
      }
      // A backup of another protocol version will not understand us either: no use retrying.
      this.fail(protocolMismatch(this.o.self, refusal, this.o.address).message);
    });
    stream.on('error', (err: grpc.ServiceError) => {
      // The backup refused us for our protocol version (its message says which it speaks). One
      // that refused a message of ours as corrupt (DATA_LOSS, INVALID_ARGUMENT) gets a new stream.
      const refused = versionRefusalError(err);
      if (refused !== null && stream === this.stream) { this.fail(refused.message); return; }
      if (err.code === grpc.status.FAILED_PRECONDITION) this.refused();
      this.streamLost(stream, `stream error: ${err.message}`);
    });
    stream.on('end', () => this.streamLost(stream, 'the backup ended the stream'));
    this.write({ hello: { backupId: this.o.backup, imageSha256: this.o.imageSha256 } });
  }

  private streamLost(stream: grpc.ClientDuplexStream<PrimaryMessage, BackupMessage>, reason: string): void {
    if (this.closed || stream !== this.stream) return;
    this.stream = null;
    stream.cancel();
    // What was in flight on the old stream may be lost: the new one starts with a full image.
    this.fullWanted = true;
    this.precopy = null;
    this.unacked.clear();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closed) return;
      this.connect();
      this.events.reopened(this.o.backup, reason);
    }, this.o.heartbeatIntervalMs);
  }

  /** Send one encoded checkpoint (dropped while the stream is being reopened: a full image follows). */
  sendCheckpoint(epoch: number, full: boolean, bytes: Uint8Array): void {
    if (this.closed || this.stream === null) return;
    // The stream broke after this was captured: the backup needs a full image first.
    if (!full && this.fullWanted) return;
    if (full) {
      this.fullCaptured();
      this.deltasAfter = epoch;
    }
    const count = Math.max(1, Math.ceil(bytes.length / CHECKPOINT_CHUNK_BYTES));
    for (let i = 0; i < count; i++) {
      const data = bytes.subarray(i * CHECKPOINT_CHUNK_BYTES, Math.min(bytes.length, (i + 1) * CHECKPOINT_CHUNK_BYTES));
      this.write({ checkpoint: { epoch, full, chunkIndex: i, chunkCount: count, data } });
    }
    this.unacked.set(epoch, bytes.length);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.stream?.end();
    this.stream?.cancel();
    this.client.close();
  }

  private write(body: Omit<PrimaryMessage, 'protocolVersion' | 'view' | 'primaryId'>): void {
    if (this.closed || this.stream === null) return;
    this.stream.write({ protocolVersion: REPLICATION_PROTOCOL_VERSION, view: this.o.view(), primaryId: this.o.self, ...body });
  }

  /** The backup answered by refusing the stream: alive, for a bounded time (REFUSAL_GRACE_TIMEOUTS). */
  private refused(): void {
    const now = this.o.nowMs();
    this.refusingSinceMs ??= now;
    if (now - this.refusingSinceMs <= REFUSAL_GRACE_TIMEOUTS * this.o.heartbeatTimeoutMs) this.lastHeardMs = now;
  }

  private onMessage(m: BackupMessage): void {
    if (this.closed) return;
    this.lastHeardMs = this.o.nowMs();
    this.refusingSinceMs = null;
    if (m.backupId !== this.o.backup) { this.fail(`peer says it is ${m.backupId}, expected ${this.o.backup}`); return; }
    if (m.ack != null) {
      for (const e of [...this.unacked.keys()]) if (e <= m.ack.epoch) this.unacked.delete(e);
      this.ackedEpoch = Math.max(this.ackedEpoch, m.ack.epoch);
      this.lastAckAtMs = this.lastHeardMs;
      this.events.ack(this.o.backup, m.view, m.ack.epoch);
    } else if (m.staged != null) {
      if (this.precopy?.token === m.staged.token && this.precopyUnstaged > 0) this.precopyUnstaged--;
      this.wakeStaged();
    } else if (m.nack != null) {
      this.fullWanted = true;
      this.precopy = null;
      this.wakeStaged();
      this.unacked.clear();
      this.events.nack(this.o.backup, m.nack.epoch, m.nack.code, m.nack.reason);
    }
  }

  private tick(): void {
    if (this.closed) return;
    const now = this.o.nowMs();
    // Our own event loop stalled (GC, a long synchronous step): replies may be sitting unread
    // in the socket. Do not blame the peer for our pause.
    if (now - this.lastTickMs > STALL_FACTOR * this.o.heartbeatIntervalMs) this.lastHeardMs = Math.max(this.lastHeardMs, now - this.o.heartbeatIntervalMs);
    this.lastTickMs = now;
    const pendingBytes = this.inflightBytes + this.precopyUnstaged * PRECOPY_SLICE_PAGES * CHECKPOINT_PAGE_BYTES;
    const timeoutMs = this.o.heartbeatTimeoutMs + Math.round((pendingBytes / MIB) * LINK_GRACE_MS_PER_MIB);
    if (now - this.lastHeardMs > timeoutMs) {
      this.fail(`no message for ${Math.round(now - this.lastHeardMs)} ms (timeout ${timeoutMs} ms${timeoutMs > this.o.heartbeatTimeoutMs ? ` with ${Math.round(pendingBytes / MIB)} MiB to apply` : ''})`);
      return;
    }
    this.write({ heartbeat: { sentAtMs: Math.round(now), epoch: this.ackedEpoch } });
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.close();
    this.events.failed(this.o.backup, reason);
  }
}
