import type * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { bindWithReceiveWindow, RECEIVE_WINDOW_BYTES } from '../../../replica/wire/receive-window.js';
import { ReplicaClient, replicaService } from '../../../replica/wire/replication-wire.js';

const NODE_DEFAULT_WINDOW_BYTES = 65_535;

/**
 * A Replica server bound with or without the raised window; returns the receive windows of the
 * HTTP/2 session a real client opens (read from the server's own session once a call arrived).
 */
async function sessionWindows(raise: boolean): Promise<{ windowRaised: boolean; stream: number; connection: number }> {
  const server = new grpc.Server();
  server.addService(replicaService, {
    replicate: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.end(),
    join: (_c: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED }),
    status: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { replicaId: 'b', role: 'backup' }),
  });
  const creds = grpc.ServerCredentials.createInsecure();
  let port: number;
  let windowRaised = false;
  if (raise) ({ port, windowRaised } = await bindWithReceiveWindow(server, '127.0.0.1:0', creds));
  else port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e === null ? resolve(p) : reject(e))));
  const sessions: http2.ServerHttp2Session[] = [];
  for (const h of (server as unknown as { http2Servers: Map<http2.Http2Server, unknown> }).http2Servers.keys()) h.on('session', (s: http2.ServerHttp2Session) => sessions.push(s));
  const client = new ReplicaClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => client.status({}, (err: grpc.ServiceError | null) => (err === null ? resolve() : reject(err))));
    const s = sessions[0];
    return { windowRaised, stream: s.localSettings.initialWindowSize ?? NODE_DEFAULT_WINDOW_BYTES, connection: s.state.localWindowSize ?? NODE_DEFAULT_WINDOW_BYTES };
  } finally {
    client.close();
    server.forceShutdown();
  }
}

test('a replica server advertises the raised receive window per stream and per connection', async (t) => {
  const w = await sessionWindows(true);
  t.true(w.windowRaised);
  t.is(w.stream, RECEIVE_WINDOW_BYTES);
  t.true(w.connection >= RECEIVE_WINDOW_BYTES - NODE_DEFAULT_WINDOW_BYTES, `connection window ${w.connection}`);
});

test('without it, grpc-js keeps the 64 KiB default that stalled pre-copy (the check above can fail)', async (t) => {
  const w = await sessionWindows(false);
  t.is(w.stream, NODE_DEFAULT_WINDOW_BYTES);
  t.true(w.connection <= NODE_DEFAULT_WINDOW_BYTES, `connection window ${w.connection}`);
});
