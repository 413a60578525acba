import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { makeMessage, type Message } from '../../../../replica/coord/raft/raft-types.js';
import { MAX_QUEUED_BATCHES_PER_PEER } from '../../../../replica/coord/raft-driver/raft-driver-options.js';
import { PeerTransport } from '../../../../replica/coord/raft-driver/raft-transport.js';
import { coordRaftService, type RaftBatch } from '../../../../replica/coord/raft-driver/raft-wire.js';
import { WEDGED_CONNECTION_MS } from '../../../../replica/wire/wedged-connection.js';

// A leader's message stream to a follower is one-way: a follower that hears no leader makes no
// calls whose timeouts would show the connection is wedged. In a soak an old primary heard no
// leader for 150 s (docs/chaos.md, finding 14). The sender must notice its stream not draining.

/** A peer that never reads the Raft stream of its first connection (its HTTP/2 window fills); later ones are read. */
async function peerDeafToFirstStream(): Promise<{ port: number; connections: Set<string>; batchesRead: () => number; stop: () => void }> {
  const server = new grpc.Server();
  const connections = new Set<string>();
  let first: string | null = null;
  let read = 0;
  const impl: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(coordRaftService)) impl[name] = (_call: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED });
  impl.send = (call: grpc.ServerReadableStream<RaftBatch, object>) => {
    const peer = call.getPeer();
    connections.add(peer);
    first ??= peer;
    if (peer === first) { call.pause(); return; } // never read, never answered
    call.on('data', () => { read++; });
  };
  server.addService(coordRaftService, impl);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, connections, batchesRead: () => read, stop: () => server.forceShutdown() };
}

/** An AppendEntries with a 4 KiB entry: a few dozen fill the peer's 64 KiB HTTP/2 window. */
function append(i: number): Message {
  return makeMessage({ type: 'app', from: 'a', to: 'w', term: 1, index: i, entries: [{ index: i + 1, term: 1, type: 'normal', data: new Uint8Array(4096).fill(i & 0xff) }] });
}

test('a peer stream whose writes stop draining is replaced by a new connection, and messages flow again', async (t) => {
  const peer = await peerDeafToFirstStream();
  const transport = new PeerTransport('a', 'test', [{ id: 'a', address: '127.0.0.1:1' }, { id: 'w', address: `127.0.0.1:${peer.port}` }], grpc.credentials.createInsecure(), undefined, undefined);
  t.teardown(() => { transport.close(); peer.stop(); });
  const started = performance.now();
  // Bounded: one send every 5 ms for at most three wedge windows, as a leader's heartbeats would.
  for (let i = 0; peer.batchesRead() === 0 && performance.now() - started < 3 * WEDGED_CONNECTION_MS; i++) {
    transport.send([append(i)]);
    await new Promise((r) => setTimeout(r, 5));
  }
  t.true(transport.stats.batchesDropped > 0, `the first stream filled up (${MAX_QUEUED_BATCHES_PER_PEER} queued) and batches were dropped`);
  t.is(transport.stats.wedgedReconnects, 1);
  t.is(peer.connections.size, 2, 'a second connection');
  t.true(peer.batchesRead() > 0, 'messages reach the peer on the new connection');
});

test('a stream that keeps draining is never replaced', async (t) => {
  const peer = await peerDeafToFirstStream();
  const transport = new PeerTransport('a', 'test', [{ id: 'w', address: `127.0.0.1:${peer.port}` }], grpc.credentials.createInsecure(), undefined, undefined);
  t.teardown(() => { transport.close(); peer.stop(); });
  // Make the deaf first connection go away, then send steadily on a healthy one for longer than the window.
  transport.send([append(0)]);
  for (let i = 0; i < 200 && peer.connections.size === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.is(peer.connections.size, 1, 'the deaf first stream was opened');
  transport.close();
  const healthy = new PeerTransport('a', 'test', [{ id: 'w', address: `127.0.0.1:${peer.port}` }], grpc.credentials.createInsecure(), undefined, undefined);
  t.teardown(() => healthy.close());
  const started = performance.now();
  for (let i = 0; performance.now() - started < WEDGED_CONNECTION_MS * 1.5; i++) {
    healthy.send([append(i)]);
    await new Promise((r) => setTimeout(r, 5));
  }
  t.is(healthy.stats.wedgedReconnects, 0);
  t.is(healthy.stats.batchesDropped, 0);
  t.true(peer.batchesRead() > 0);
});
