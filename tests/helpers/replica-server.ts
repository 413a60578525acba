import * as grpc from '@grpc/grpc-js';
import { replicaService, type BackupMessage, type JoinReply, type JoinRequest, type PrimaryMessage } from '../../replica/wire/replication-wire.js';

/** The server end of a replication stream. */
export type ReplicateCall = grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>;

/**
 * A real gRPC Replica server on a free loopback port whose Replicate handler (and optionally Join
 * handler) the test supplies; the others answer UNIMPLEMENTED.
 */
export async function replicaServer(replicate: (call: ReplicateCall) => void, join?: grpc.handleUnaryCall<JoinRequest, JoinReply>): Promise<{ address: string; port: number; close(): void }> {
  const s = new grpc.Server();
  s.addService(replicaService, {
    replicate,
    join: join ?? ((_c: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED })),
    status: (_c: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED }),
  });
  const port = await new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e === null ? resolve(p) : reject(e))));
  return { address: `127.0.0.1:${port}`, port, close: () => s.forceShutdown() };
}
