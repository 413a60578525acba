import test from 'ava';
import { startEtcd } from '../../helpers/etcd-server.js';
import { startTestCluster } from '../../helpers/cluster.js';
import { toolAvailable } from '../../helpers/tools.js';
import { makeTestPki } from '../../helpers/tls-certs.js';

const run = toolAvailable('etcd', 'the replicas coordinate through a real etcd') && toolAvailable('openssl', 'makes the test certificates') ? test : test.skip;

/**
 * What deploy/three-machines/waterbear.yaml describes, on loopback: two replica processes, no
 * witness, coordinated by a real etcd that demands client certificates (https://, the cluster's
 * own PKI), replicating over mutual TLS. kill -9 of the primary: the backup takes over through
 * etcd with every acknowledged write; the killed replica returns and rejoins as a backup.
 */
run('a cluster on etcd over TLS fails over on kill -9 of its primary and is protected again when it returns', async (t) => {
  const pki = makeTestPki('etcd-cluster');
  const etcd = await startEtcd({ tls: { certFile: pki.cert, keyFile: pki.key, caFile: pki.ca, clientCertFile: pki.cert, clientKeyFile: pki.key } });
  t.teardown(() => etcd.stop());
  t.true(etcd.endpoint.startsWith('https://'));
  const c = await startTestCluster({
    witness: false,
    extraYaml: `coordinator: { backend: etcd, endpoints: [${etcd.endpoint}], prefix: /wbtest/ }\ntls: { ca: ${pki.ca}, cert: ${pki.cert}, key: ${pki.key} }\n`,
  });
  t.teardown(() => c.stop());
  t.is(c.config.coordinator.backend, 'etcd');
  const p = await c.protectedPrimary(1, 60_000);
  const client = await c.client();
  for (let i = 0; i < 20; i++) t.is(await client.call('SET', `k${i}`, `v${i}`), 'OK');
  client.close();
  process.kill(c.cluster.pid(p.replicaId)!, 'SIGKILL');
  const np = await c.primary();
  const after = await c.client();
  // The new primary may be the old one restarted quickly, never one that lost a write.
  for (let i = 0; i < 20; i++) t.is(await after.call('GET', `k${i}`), `v${i}`);
  after.close();
  t.true(np.view > p.view);
  const again = await c.protectedPrimary(1, 60_000);
  t.is(again.backups.length, 1);
  t.true(again.view > p.view);
  t.log(`view ${p.view} (primary ${p.replicaId}) → view ${again.view} (primary ${again.replicaId}, backup ${again.backups[0]})`);
});
