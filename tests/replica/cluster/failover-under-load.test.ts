import test from 'ava';
import { RespClient } from '../../../chaos/clients/resp-client.js';
import { startTestCluster, until } from '../../helpers/cluster.js';

const CLIENTS = 16;

/**
 * kill -9 the primary under load from 16 clients. Each client INCRs its own counter: every value
 * a client saw acknowledged must be readable after failover (no acknowledged write lost), and the
 * values a client sees only ever grow (no client reads state older than it read before).
 */
test('kill -9 of the primary under load from 16 clients loses no acknowledged write and never goes backwards', async (t) => {
  const c = await startTestCluster();
  t.teardown(() => c.stop());
  const p = await c.protectedPrimary();
  const acked = new Array<number>(CLIENTS).fill(0);
  const seen = new Array<number>(CLIENTS).fill(0);
  let backwards: string | null = null;
  let stop = false;
  let opsAfterKill = 0;
  let killed = false;
  const worker = async (i: number): Promise<void> => {
    let client: RespClient | null = null;
    const deadline = Date.now() + 60_000;
    while (!stop && Date.now() < deadline) {
      try {
        client ??= await RespClient.connect(c.servicePort, '127.0.0.1', 1000);
        client.timeoutMs = 5000;
        const v = Number(await client.call('INCR', `client:${i}`));
        if (v <= seen[i]) backwards ??= `client ${i} saw ${v} after ${seen[i]}`;
        seen[i] = v;
        acked[i] = v;
        if (killed) opsAfterKill++;
      } catch {
        client?.close();
        client = null;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    client?.close();
  };
  const workers = Array.from({ length: CLIENTS }, (_, i) => worker(i));
  await until('some load', () => acked.every((v) => v >= 5));
  // Under this load the backup was fed sub-page deltas (the default): failover restores what they built.
  // None refused: a delta the backup could not rebuild would be refused, and cost a full image.
  const { stats } = JSON.parse((await c.primary()).statusJson) as { stats: { deltaPages: number; capturedPages: number; refusals: number } };
  t.true(stats.deltaPages > 0, `pages sent as deltas: ${stats.deltaPages} of ${stats.capturedPages}`);
  t.is(stats.refusals, 0, 'checkpoints refused by the backup');
  const killedAt = Date.now();
  process.kill(c.cluster.pid(p.replicaId)!, 'SIGKILL');
  killed = true;
  await until('operations on the new primary', () => opsAfterKill >= CLIENTS * 5, 30_000);
  const failoverMs = Date.now() - killedAt;
  stop = true;
  await Promise.all(workers);
  t.is(backwards, null);
  const check = await c.client();
  for (let i = 0; i < CLIENTS; i++) {
    const v = Number(await check.call('GET', `client:${i}`));
    t.true(v >= acked[i], `client ${i}: acknowledged ${acked[i]}, stored ${v}`);
  }
  check.close();
  const np = await c.primary();
  t.not(np.replicaId, p.replicaId);
  t.log(`failover under load: ${failoverMs} ms until ${CLIENTS * 5} operations succeeded on ${np.replicaId}`);
  // The killed replica comes back and rejoins as a backup: the cluster is protected again.
  const again = await c.protectedPrimary(1, 60_000);
  t.deepEqual(again.backups, [p.replicaId]);
});
