import test from 'ava';
import type { JoinAnswer } from '../../../replica/backup/backup-driver.js';
import type { View } from '../../../replica/protocol/view.js';
import { replicaService } from '../../../replica/wire/replication-wire.js';
import { testBackupDriver } from '../../helpers/backup-driver.js';
import { serverDeafToFirstConnection } from '../../helpers/deaf-server.js';

// A join request whose connection to the primary is wedged (answers never come, as when flipped
// bits stall HTTP/2 flow control) must not keep every later request on that connection: with
// grpc-js's shared subchannel pool, each retry's new client got the connection of a request still
// open, and the replica never joined (docs/chaos.md, finding 13).

test('join requests after one that hangs go over a new connection and are answered', async (t) => {
  const primary = await serverDeafToFirstConnection(replicaService, 'join', { accepted: true, view: 1, primaryId: 'a', reason: '' });
  t.teardown(() => primary.stop());
  const view: View = { view: 1, primary: 'a', backups: [] }; // b is outside the view: it joins
  const driver = testBackupDriver({ primaryPort: primary.port, view });
  t.teardown(() => driver.stop());
  const answers: JoinAnswer[] = [];
  const accepted = new Promise<JoinAnswer>((resolve) => {
    driver.on('join-answer', (a: JoinAnswer) => { answers.push(a); if (a.accepted) resolve(a); });
  });
  driver.start();
  // Bounded: the first request hangs until its 2 s deadline; retries come every 500 ms.
  const first = await Promise.race([accepted, new Promise<null>((r) => setTimeout(() => r(null), 6_000))]);
  t.not(first, null, `no join accepted in 6 s; answers: ${JSON.stringify(answers)}`);
  t.is(first?.primary, 'a');
  t.true(primary.connections.size >= 2, 'the answer came on another connection than the hanging one');
});
