import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { isWaterbearError } from '../../../../libos-host/errors.js';
import { WEDGED_CONNECTION_MS } from '../../../../replica/wire/wedged-connection.js';
import { PeerTransport } from '../../../../replica/coord/raft-driver/raft-transport.js';
import { coordRaftService, header, type StatusReply } from '../../../../replica/coord/raft-driver/raft-wire.js';
import { serverDeafToFirstConnection, type DeafServer } from '../../../helpers/deaf-server.js';

const CALL_TIMEOUT_MS = 300;

const REPLY: StatusReply = { id: 'w', role: 'leader', term: 1, leader: 'w', commit: 1, applied: 1, snapshotIndex: 0, lastIndex: 1, voters: ['a', 'w'], view: 1 };
const peerDeafToFirstConnection = (): Promise<DeafServer> => serverDeafToFirstConnection(coordRaftService, 'status', REPLY);

test('a peer connection on which every request times out is replaced by a new one, and requests are answered again', async (t) => {
  const peer = await peerDeafToFirstConnection();
  const transport = new PeerTransport('a', 'test', [{ id: 'a', address: '127.0.0.1:1' }, { id: 'w', address: `127.0.0.1:${peer.port}` }], grpc.credentials.createInsecure(), undefined, undefined);
  t.teardown(async () => { transport.close(); await peer.stop(); });
  const started = performance.now();
  let timeouts = 0;
  let answer: StatusReply | null = null;
  // Bounded: the wedge is detected after WEDGED_CONNECTION_MS of timeouts; give it three times that.
  while (answer === null && performance.now() - started < 3 * WEDGED_CONNECTION_MS + 10 * CALL_TIMEOUT_MS) {
    try {
      answer = await transport.unary<{ header: ReturnType<typeof header> }, StatusReply>('w', 'status', { header: header('test', 'a', CALL_TIMEOUT_MS) }, CALL_TIMEOUT_MS);
    } catch (err) {
      t.true(isWaterbearError(err, 'WB_TIMEOUT') || isWaterbearError(err, 'WB_COORD_UNAVAILABLE'), String(err));
      timeouts++;
    }
  }
  t.not(answer, null, `answered after ${timeouts} failed requests`);
  t.is(answer?.leader, 'w');
  t.true(timeouts >= 2, 'the first connection really was deaf');
  t.is(transport.stats.wedgedReconnects, 1);
  t.is(peer.connections.size, 2, 'the answer came on a second connection');
});

test('a single timed-out request does not replace the connection', async (t) => {
  const peer = await peerDeafToFirstConnection();
  const transport = new PeerTransport('a', 'test', [{ id: 'w', address: `127.0.0.1:${peer.port}` }], grpc.credentials.createInsecure(), undefined, undefined);
  t.teardown(async () => { transport.close(); await peer.stop(); });
  // One request times out (the first connection), then the link is replaced only after the rest
  // of the window: a single timeout followed by an answer must not count toward a wedge.
  await t.throwsAsync(transport.unary('w', 'status', { header: header('test', 'a', CALL_TIMEOUT_MS) }, CALL_TIMEOUT_MS));
  t.is(transport.stats.wedgedReconnects, 0, 'one timeout is not a wedge');
});
