/**
 * Serving a Raft member over gRPC: on an existing server (a replica process runs one gRPC server for
 * replication and coordination) with `registerRaftService`, or on a server of its own (the witness)
 * with `startRaftServer`.
 */
import * as grpc from '@grpc/grpc-js';
import { isWaterbearError, WaterbearError } from '../../../libos-host/errors.js';
import { MAX_COORD_MESSAGE_BYTES } from './raft-driver-options.js';
import type { RaftMember } from './raft-member.js';
import { corruptionOf } from '../../wire/frame-checksum.js';
import { CORRUPTION_STATUS, corruptMessage, isCorrupt, peerHost, refusalOf, type OrRefused } from '../../wire/refused-message.js';
import {
  coordRaftService,
  oldMemberRefusal,
  WB_CODE_METADATA_KEY,
  type KeepAliveReply,
  type KeepAliveRequest,
  type LeaseExpiryReply,
  type LeaseExpiryRequest,
  type ProposeReply,
  type ProposeRequest,
  type RaftBatch,
  type ReadIndexReply,
  type ReadIndexRequest,
  type StatusReply,
  type StatusRequest,
} from './raft-wire.js';

function refusal(err: unknown): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (isWaterbearError(err)) {
    metadata.set(WB_CODE_METADATA_KEY, err.code);
    const corruption = corruptionOf(err);
    const code = corruption !== null ? CORRUPTION_STATUS[corruption] : err.code === 'WB_PROTOCOL' ? grpc.status.FAILED_PRECONDITION : grpc.status.UNAVAILABLE;
    return { code, details: err.message, metadata };
  }
  return { code: grpc.status.INTERNAL, details: (err as Error)?.message ?? String(err), metadata };
}

/**
 * The error refusing a request its deserializer handed over as refused (a member too old to seal
 * frames as we do, or a corrupt request; replica/wire/refused-message.ts), or null for a request to serve.
 */
function refusedRequest(member: RaftMember, call: { getPeer(): string }, request: unknown): WaterbearError | null {
  const r = refusalOf(request);
  if (r === null) return null;
  return isCorrupt(r) ? corruptMessage(member.id, r, { id: null, address: peerHost(call) }) : oldMemberRefusal(member.id, peerHost(call));
}

function unary<Req, Res>(member: RaftMember, logRefusal: (err: unknown) => void, serve: (req: Req) => Promise<Res> | Res): grpc.handleUnaryCall<OrRefused<Req>, Res> {
  return (call, callback) => {
    const refused = refusedRequest(member, call, call.request);
    if (refused !== null) {
      logRefusal(refused);
      callback(refusal(refused));
      return;
    }
    Promise.resolve()
      .then(() => serve(call.request as Req))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(refusal(err)),
      );
  };
}

/**
 * Refusals are logged at most once per this interval and reason (a misconfigured peer retries
 * every 50 ms); for a corrupt message, per peer and kind of corruption.
 */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * Adds the CoordRaft service (proto/coord.proto) for `member` to `server`. Call it before or after the
 * server is bound; a server can serve one member only.
 */
export function registerRaftService(server: grpc.Server, member: RaftMember): void {
  const lastLogged = new Map<string, number>();
  const logRefusal = (err: unknown): void => {
    const text = (err as Error)?.message ?? String(err);
    const details = isWaterbearError(err) ? err.details : undefined;
    const key = corruptionOf(err) === null ? text : `${String(details?.peer)} ${String(details?.corruption)}`;
    const now = performance.now();
    if (now - (lastLogged.get(key) ?? -Infinity) < REFUSAL_LOG_INTERVAL_MS) return;
    if (lastLogged.size > 100) lastLogged.clear();
    lastLogged.set(key, now);
    member.log.warn({ ...details, err: text }, 'refused a coordination stream');
  };
  server.addService(coordRaftService, {
    send: (call: grpc.ServerReadableStream<RaftBatch, Record<string, never>>, callback: grpc.sendUnaryData<Record<string, never>>) => {
      let done = false;
      const finish = (err: Partial<grpc.StatusObject> | null): void => {
        if (done) return;
        done = true;
        if (err === null) callback(null, {});
        else callback(err);
      };
      call.on('data', (batch: OrRefused<RaftBatch>) => {
        if (done) return;
        try {
          const refused = refusedRequest(member, call, batch);
          if (refused !== null) throw refused;
          member.receiveBatch(batch as RaftBatch);
        } catch (err) {
          logRefusal(err);
          finish(refusal(err));
        }
      });
      call.on('end', () => finish(null));
      call.on('error', () => finish(null));
    },
    propose: unary<ProposeRequest, ProposeReply>(member, logRefusal, (req) => member.serveProposal(req)),
    readIndex: unary<ReadIndexRequest, ReadIndexReply>(member, logRefusal, (req) => member.serveReadIndex(req)),
    keepAlive: unary<KeepAliveRequest, KeepAliveReply>(member, logRefusal, (req) => member.serveKeepAlive(req)),
    leaseExpiry: unary<LeaseExpiryRequest, LeaseExpiryReply>(member, logRefusal, (req) => member.serveLeaseExpiry(req)),
    status: unary<StatusRequest, StatusReply>(member, logRefusal, (req) => member.serveStatus(req)),
  });
}

/** A gRPC server of its own serving one member (standalone mode). */
export interface RaftServer {
  readonly server: grpc.Server;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Stops accepting calls and ends open ones. Idempotent. */
  close(): Promise<void>;
}

/**
 * Creates a gRPC server, registers `member` on it and binds `address` (host:port).
 * @throws WaterbearError WB_LISTEN_FAILED when the address cannot be bound.
 */
export async function startRaftServer(member: RaftMember, address: string, credentials: grpc.ServerCredentials): Promise<RaftServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_COORD_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_COORD_MESSAGE_BYTES,
  });
  registerRaftService(server, member);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, credentials, (err, p) => (err === null ? resolve(p) : reject(err)));
  }).catch((cause: unknown) => {
    server.forceShutdown();
    throw new WaterbearError('WB_LISTEN_FAILED', `cannot listen on ${address} for coordination: ${(cause as Error).message}`, { cause });
  });
  let closed: Promise<void> | null = null;
  return {
    server,
    port,
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => { server.forceShutdown(); resolve(); }, 1_000);
        server.tryShutdown(() => { clearTimeout(force); resolve(); });
      });
      return closed;
    },
  };
}
