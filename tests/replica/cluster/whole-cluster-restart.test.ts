import test from 'ava';
import { startTestCluster, until } from '../../helpers/cluster.js';

// A whole-cluster restart (every machine rebooted, or `systemctl stop` everywhere) after a backup
// rejoined and the guest then stayed idle. The rejoined backup stored its full image in the view
// it joined in and received nothing in the view that added it, so its chain record named the
// older view; at restart the first view it learned was the newer one, it did not trust its chain,
// and the old primary (which holds no store of its own) could not serve: NO PRIMARY for ever.

/** Generous: two processes restoring on a busy 2-core machine. */
const RECOVERY_TIMEOUT_MS = 60_000;

test('after a backup rejoined and the guest idled, a whole-cluster restart comes back with every write', async (t) => {
  const c = await startTestCluster({ restart: false });
  t.teardown(() => c.stop());
  const first = await c.protectedPrimary(1, 60_000);
  const backup = first.backups[0];
  let client = await c.client();
  t.is(await client.call('SET', 'before-rejoin', '1'), 'OK');
  client.close();

  // The backup dies and comes back; the primary re-protects itself with it in a later view.
  process.kill(c.cluster.pid(backup)!, 'SIGKILL');
  await until(`${backup} to exit`, () => c.cluster.pid(backup) === undefined, 10_000);
  c.cluster.startMember(backup);
  const rejoined = await until(`a view after ${first.view} with ${backup} protecting`, async () => {
    const p = await c.protectedPrimary(1, 60_000);
    return p.view > first.view && p.backups.includes(backup) ? p : null;
  }, 60_000);
  t.is(rejoined.replicaId, first.replicaId, 'the same primary re-protected itself');

  // No writes after the rejoin: the guest idles, so no checkpoint arrives in the new view.
  await new Promise((r) => setTimeout(r, 500));
  await c.restartAll('SIGKILL');

  const after = await until('a primary after the whole-cluster restart', () => c.cluster.primary(), RECOVERY_TIMEOUT_MS);
  t.true(after.view > rejoined.view);
  client = await c.client();
  t.is(await client.call('GET', 'before-rejoin'), '1', 'the write acknowledged before the restart is there');
  t.is(await client.call('SET', 'after-restart', '2'), 'OK');
  client.close();
});
