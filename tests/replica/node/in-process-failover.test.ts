import test from 'ava';
import { RespClient } from '../../../chaos/clients/resp-client.js';
import type { ReplicaNode } from '../../../replica/node/replica-node.js';
import { until } from '../../helpers/cluster.js';
import { inProcessTwoNodes } from '../../helpers/two-nodes.js';

/** Two replica nodes in this process over a test-only coordinator (tests/helpers/two-nodes.ts). */
async function twoNodes(): Promise<{ a: ReplicaNode; b: ReplicaNode; svc: number }> {
  return inProcessTwoNodes();
}

test('two replicas in one process: writes replicate, output waits for acks, the backup takes over with the data', async (t) => {
  const { a, b, svc } = await twoNodes();
  t.is(a.role, 'primary');
  const c = await until('service', () => RespClient.connect(svc));
  for (let i = 0; i < 50; i++) t.is(await c.call('SET', `k${i}`, `v${i}`), 'OK');
  t.is(await c.call('INCRBY', 'n', 7), 7);
  const st = a.statusReply();
  t.true(st.protected, JSON.stringify(st));
  t.true(st.ackedEpoch > 0);
  // kill the primary (in-process: stop it) and let the backup take over.
  await a.stop();
  c.close();
  await until('b primary', () => b.role === 'primary');
  const c2 = await until('service after failover', () => RespClient.connect(svc));
  t.is(await c2.call('GET', 'k49'), 'v49');
  t.is(await c2.call('GET', 'n'), '7');
  t.is(await c2.call('INCR', 'n'), 8);
  c2.close();
  await b.stop();
});

test('a planned switchover hands the primary role to the backup with every acknowledged write and no lost reply', async (t) => {
  const { a, b, svc } = await twoNodes();
  const c = await until('service', () => RespClient.connect(svc));
  for (let i = 0; i < 20; i++) t.is(await c.call('INCR', 'counter'), i + 1);
  await until('protected', () => a.statusReply().protected);
  const r = await a.switchover('b');
  t.is(r.view, 2);
  await until('b primary', () => b.role === 'primary');
  await until('a back as backup', () => a.role === 'backup' || a.role === 'joining');
  c.close();
  const c2 = await until('service after switchover', () => RespClient.connect(svc));
  t.is(await c2.call('INCR', 'counter'), 21);
  c2.close();
  // The old primary rejoins and the new primary is protected again.
  await until('protected again', () => b.statusReply().protected, 20_000);
  await Promise.all([a.stop(), b.stop()]);
});
