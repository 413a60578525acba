import test from 'ava';
import { startTestCluster } from '../../helpers/cluster.js';

/**
 * No output before acknowledgement: with the backup stopped (SIGSTOP), clients receive nothing;
 * on SIGCONT everything arrives, in order. (The heartbeat timeout is long here so the primary
 * does not drop the paused backup and go unprotected, which would release output — correctly.)
 */
test('with the backup stopped, clients receive nothing; on SIGCONT every reply arrives in order', async (t) => {
  const c = await startTestCluster({ replication: '{ heartbeatInterval: 100ms, heartbeatTimeout: 30s }' });
  t.teardown(() => c.stop());
  const p = await c.protectedPrimary();
  const backupPid = c.cluster.pid(p.backups[0])!;
  const client = await c.client();
  t.is(await client.call('SET', 'before', 'x'), 'OK');
  process.kill(backupPid, 'SIGSTOP');
  t.teardown(() => { try { process.kill(backupPid, 'SIGCONT'); } catch { /* gone */ } });
  const replies: string[] = [];
  const calls = Array.from({ length: 10 }, (_, i) => client.call('INCR', 'ordered').then((v) => { replies.push(String(v)); }));
  await new Promise((r) => setTimeout(r, 2000));
  t.deepEqual(replies, [], 'no reply may leave before the backup acknowledges');
  process.kill(backupPid, 'SIGCONT');
  await Promise.all(calls);
  t.deepEqual(replies, ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
  client.close();
});
