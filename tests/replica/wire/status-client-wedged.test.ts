import test from 'ava';
import { replicaService, type StatusReply } from '../../../replica/wire/replication-wire.js';
import { StatusClient } from '../../../replica/wire/status-client.js';
import { WEDGED_CONNECTION_MS, WedgeDetector } from '../../../replica/wire/wedged-connection.js';
import { serverDeafToFirstConnection } from '../../helpers/deaf-server.js';

const PROBE_TIMEOUT_MS = 300;
const REPLY: StatusReply = { replicaId: 'a', role: 'primary', view: 3, primaryId: 'a', backups: ['b'], protected: true, epoch: 7, ackedEpoch: 7, statusJson: '{}' };

test('a status channel on which every request times out is replaced, and the member answers again', async (t) => {
  const server = await serverDeafToFirstConnection(replicaService, 'status', REPLY);
  const client = new StatusClient(null, PROBE_TIMEOUT_MS);
  t.teardown(async () => { client.close(); await server.stop(); });
  const started = performance.now();
  let failed = 0;
  let answer: StatusReply | null = null;
  // Bounded: the wedge is detected after WEDGED_CONNECTION_MS of timeouts; give it three times that.
  while (answer === null && performance.now() - started < 3 * WEDGED_CONNECTION_MS + 10 * PROBE_TIMEOUT_MS) {
    const p = await client.probe(`127.0.0.1:${server.port}`);
    if (p.ok) answer = p.reply;
    else { t.false(p.answered, p.message); failed++; }
  }
  t.not(answer, null, `answered after ${failed} failed probes`);
  t.is(answer?.view, 3);
  t.true(failed >= 2, 'the first connection really was deaf');
  t.is(client.wedgedReconnects, 1);
  t.is(server.connections.size, 2, 'the answer came on a second connection');
});

test('the wedge detector needs both the time and the count, and any answer starts it again', (t) => {
  let now = 0;
  const w = new WedgeDetector(() => now);
  now = WEDGED_CONNECTION_MS * 10;
  t.is(w.timedOut(0), null, 'one timeout, however old, is not a wedge');
  w.answered();
  t.is(w.timedOut(now), null);
  now += WEDGED_CONNECTION_MS - 1;
  t.is(w.timedOut(now), null, 'two timeouts within the window are not yet a wedge');
  now += 1;
  t.deepEqual(w.timedOut(now), { timeouts: 3, ms: WEDGED_CONNECTION_MS });
  t.is(w.timedOut(now), null, 'after a replacement the count starts again');
});
