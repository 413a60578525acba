import * as grpc from '@grpc/grpc-js';
import type { TlsConfig } from '../config/cluster-config.js';
import { channelCredentials } from './credentials.js';
import { ReplicaClient, type StatusReply } from './replication-wire.js';
import { OWN_SUBCHANNEL_OPTIONS, WedgeDetector } from './wedged-connection.js';

/** Deadline of one Status request. */
export const STATUS_REQUEST_TIMEOUT_MS = 800;

/** What one Status request found: the reply, or the gRPC status code and message. */
export type StatusProbe =
  | { ok: true; reply: StatusReply }
  /** `answered`: the process answered (e.g. UNIMPLEMENTED from a witness, which has no Replica service). */
  | { ok: false; answered: boolean; code: number; message: string };

type StatusStub = grpc.Client & {
  status(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, r?: StatusReply) => void): void;
};

/** Codes that mean the process itself answered (it is up), without a status for us. */
const ANSWERED_CODES = new Set([grpc.status.UNIMPLEMENTED, grpc.status.FAILED_PRECONDITION, grpc.status.PERMISSION_DENIED]);

interface Member { client: StatusStub; wedge: WedgeDetector }

/**
 * Asks members for their status over the Replica service's Status RPC, keeping one gRPC channel
 * per address (the dashboard asks several times a second). A channel whose every request has
 * timed out for WEDGED_CONNECTION_MS is replaced, so a connection that stays open but carries
 * nothing does not show a live member as down for good.
 */
export class StatusClient {
  private readonly members = new Map<string, Member>();
  private closed = false;
  /** Channels replaced because every request on them timed out. */
  wedgedReconnects = 0;

  private readonly credentials: grpc.ChannelCredentials;

  /** Reads and checks the TLS files now: WB_CONFIG_INVALID for a bad one (see channelCredentials). */
  constructor(tls: TlsConfig | null, private readonly timeoutMs = STATUS_REQUEST_TIMEOUT_MS) {
    this.credentials = channelCredentials(tls);
  }

  /** Never throws: a member that does not answer gives `{ ok: false }`. */
  probe(address: string): Promise<StatusProbe> {
    if (this.closed) return Promise.resolve({ ok: false, answered: false, code: grpc.status.CANCELLED, message: 'status client closed' });
    let m = this.members.get(address);
    if (m === undefined) {
      m = { client: new ReplicaClient(address, this.credentials, OWN_SUBCHANNEL_OPTIONS) as unknown as StatusStub, wedge: new WedgeDetector() };
      this.members.set(address, m);
    }
    const member = m;
    const sentAtMs = performance.now();
    return new Promise((resolve) => {
      member.client.status({}, { deadline: Date.now() + this.timeoutMs }, (err, r) => {
        if (err?.code === grpc.status.DEADLINE_EXCEEDED) this.timedOut(address, member, sentAtMs);
        else if (err === null || ANSWERED_CODES.has(err.code)) member.wedge.answered();
        if (err === null && r !== undefined) resolve({ ok: true, reply: r });
        else if (err !== null) resolve({ ok: false, answered: ANSWERED_CODES.has(err.code), code: err.code, message: err.details || err.message });
        else resolve({ ok: false, answered: false, code: grpc.status.UNKNOWN, message: 'empty reply' });
      });
    });
  }

  close(): void {
    this.closed = true;
    for (const m of this.members.values()) m.client.close();
    this.members.clear();
  }

  private timedOut(address: string, member: Member, sentAtMs: number): void {
    if (member.wedge.timedOut(sentAtMs) === null || this.members.get(address) !== member) return;
    this.wedgedReconnects++;
    member.client.close();
    this.members.delete(address); // the next probe opens a new connection
  }
}
