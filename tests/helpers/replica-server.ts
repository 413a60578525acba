import * as grpc from '@grpc/grpc-js';
import { replicaService, type BackupMessage, type JoinReply, type JoinRequest, type PrimaryMessage } from '../../replica/wire/replication-wire.js';

/** The server end of a replication stream. */
export type ReplicateCall = grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>;

const raw = (b: Buffer): Buffer => b;
const replicaPath = (method: string): string => `/waterbear.replication.v1.Replica/${method}`;

/** The Replica service as a test's own bytes see it: every message a Buffer, sent and received as is. */
const rawReplicaService = Object.fromEntries(Object.entries(replicaService).map(([name, m]) => [name, {
  ...m, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw,
}])) as unknown as grpc.ServiceDefinition;

async function serve(service: grpc.ServiceDefinition, replicate: grpc.UntypedHandleCall, join?: grpc.UntypedHandleCall): Promise<{ address: string; port: number; close(): void }> {
  const s = new grpc.Server();
  s.addService(service, {
    replicate,
    join: join ?? ((_c: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED })),
    status: (_c: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED }),
  });
  const port = await new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e === null ? resolve(p) : reject(e))));
  return { address: `127.0.0.1:${port}`, port, close: () => s.forceShutdown() };
}

/**
 * A real gRPC Replica server on a free loopback port whose Replicate handler (and optionally Join
 * handler) the test supplies; the others answer UNIMPLEMENTED.
 */
export function replicaServer(replicate: (call: ReplicateCall) => void, join?: grpc.handleUnaryCall<JoinRequest, JoinReply>): Promise<{ address: string; port: number; close(): void }> {
  return serve(replicaService, replicate as grpc.UntypedHandleCall, join as grpc.UntypedHandleCall | undefined);
}

/** replicaServer whose Replicate handler reads and writes raw bytes (e.g. a backup answering with corrupt frames). */
export function rawReplicaServer(replicate: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => void): Promise<{ address: string; port: number; close(): void }> {
  return serve(rawReplicaService, replicate as grpc.UntypedHandleCall);
}

/** A Replicate stream of raw bytes from a real gRPC client: what the server answers, and the status it ends with. */
export interface RawReplicateStream {
  write(frame: Buffer): void;
  /** Every message the server sent, as received. */
  readonly replies: Buffer[];
  /** The error status the stream ended with (null: it ended well, or was closed first). */
  readonly ended: Promise<grpc.ServiceError | null>;
  close(): void;
}

/** Open a Replicate stream to `address` whose messages are `write`'s bytes as they are (encoded, or not). */
export function rawReplicateStream(address: string): RawReplicateStream {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const stream = client.makeBidiStreamRequest(replicaPath('Replicate'), raw, raw);
  const replies: Buffer[] = [];
  stream.on('data', (b: Buffer) => replies.push(b));
  const ended = new Promise<grpc.ServiceError | null>((resolve) => {
    stream.on('error', (err: grpc.ServiceError) => resolve(err));
    stream.on('status', (s: grpc.StatusObject) => { if (s.code === grpc.status.OK) resolve(null); });
  }).finally(() => client.close());
  return { write: (f) => stream.write(f), replies, ended, close: () => { stream.cancel(); client.close(); } };
}

/** Send `frame` (raw bytes) as the request of a Join or Status call to `address`; resolves with the error status (null: answered). */
export function rawUnaryCall(address: string, method: 'Join' | 'Status', frame: Buffer): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<grpc.ServiceError | null>((resolve) => {
    client.makeUnaryRequest(replicaPath(method), raw, raw, frame, { deadline: Date.now() + 5_000 }, (err) => resolve(err));
  }).finally(() => client.close());
}
