import * as grpc from '@grpc/grpc-js';
import type { TlsConfig } from '../replica/config/cluster-config.js';
import { channelCredentials } from '../replica/wire/credentials.js';
import { ReplicaClient, type StatusReply } from '../replica/wire/replication-wire.js';

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

/**
 * Asks members for their status over the Replica service's Status RPC, keeping one gRPC channel
 * per address (the dashboard asks several times a second).
 */
export class StatusClient {
  private readonly clients = new Map<string, StatusStub>();
  private closed = false;

  constructor(private readonly tls: TlsConfig | null, private readonly timeoutMs = STATUS_REQUEST_TIMEOUT_MS) {}

  /** Never throws: a member that does not answer gives `{ ok: false }`. */
  probe(address: string): Promise<StatusProbe> {
    if (this.closed) return Promise.resolve({ ok: false, answered: false, code: grpc.status.CANCELLED, message: 'status client closed' });
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new ReplicaClient(address, channelCredentials(this.tls)) as unknown as StatusStub;
      this.clients.set(address, client);
    }
    const c = client;
    return new Promise((resolve) => {
      c.status({}, { deadline: Date.now() + this.timeoutMs }, (err, r) => {
        if (err === null && r !== undefined) resolve({ ok: true, reply: r });
        else if (err !== null) resolve({ ok: false, answered: ANSWERED_CODES.has(err.code), code: err.code, message: err.details || err.message });
        else resolve({ ok: false, answered: false, code: grpc.status.UNKNOWN, message: 'empty reply' });
      });
    });
  }

  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
