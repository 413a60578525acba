/**
 * The etcd coordinator over TLS with client-certificate authentication, and over TLS without it
 * (the cluster file's `coordinator.tls` with its `ca` alone). The certificates in
 * fixtures/tls are throwaway test material (a CA, a server certificate for 127.0.0.1 and a client
 * certificate, valid for 100 years); never use them anywhere else.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { startEtcd, type EtcdServer } from '../../../helpers/etcd-server.js';
import { parseClusterConfig } from '../../../../replica/config/cluster-config.js';
import { etcdOptionsFor } from '../../../../replica/coord/create-coordinator.js';
import { Coordinators, ETCD_SERVER_OPTIONS, etcdTest, HAVE_ETCD, isUnavailable, uniqueCluster } from './etcd-fixture.js';

const TLS_DIR = fileURLToPath(new URL('./fixtures/tls/', import.meta.url));
const ca = join(TLS_DIR, 'ca.pem');
const clientCert = join(TLS_DIR, 'client.pem');
const clientKey = join(TLS_DIR, 'client-key.pem');

let server: EtcdServer | null = null;
/** Serves TLS but asks for no client certificate. */
let serverOnlyTls: EtcdServer | null = null;

test.before(async () => {
  if (!HAVE_ETCD) return;
  const tls = { certFile: join(TLS_DIR, 'server.pem'), keyFile: join(TLS_DIR, 'server-key.pem'), caFile: ca, clientCertFile: clientCert, clientKeyFile: clientKey };
  server = await startEtcd({ ...ETCD_SERVER_OPTIONS, tls });
  serverOnlyTls = await startEtcd({ ...ETCD_SERVER_OPTIONS, tls: { ...tls, clientCertAuth: false } });
});
test.after.always(async () => {
  await server?.stop();
  await serverOnlyTls?.stop();
});

etcdTest('views, watches and leases work over TLS with a client certificate', async (t) => {
  if (server === null) throw new Error('etcd did not start');
  t.true(server.endpoint.startsWith('https://'));
  const cs = new Coordinators(server, uniqueCluster('tls'), { tls: { caFile: ca, certFile: clientCert, keyFile: clientKey } });
  try {
    const a = cs.client();
    const seen: number[] = [];
    const unsubscribe = a.watchViews((v) => seen.push(v.view));
    await a.proposeView(0, { view: 1, primary: 'r1', backups: ['r2'] });
    t.is((await cs.client().readView())?.view, 1);
    const g = await a.keepAlive('r1');
    t.is(g.view, 1);
    const until = performance.now() + 5_000;
    while (seen.length === 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
    t.deepEqual(seen, [1]);
    unsubscribe();
  } finally {
    await cs.closeAll();
  }
});

etcdTest('without a client certificate etcd refuses the connection: a clear error, not a hang', async (t) => {
  if (server === null) throw new Error('etcd did not start');
  const cs = new Coordinators(server, uniqueCluster('tls-no-cert'), { tls: { caFile: ca }, requestTimeoutMs: 1_000 });
  try {
    const start = performance.now();
    const err = await t.throwsAsync(cs.client().readView());
    t.true(isUnavailable(err) || (err as { code?: string }).code === 'WB_PERMISSION', String(err));
    t.true(performance.now() - start < 3_000);
  } finally {
    await cs.closeAll();
  }
});

etcdTest('an etcd that asks for no client certificate is reached with its CA alone, as a cluster file\'s coordinator.tls: { ca } gives it', async (t) => {
  if (serverOnlyTls === null) throw new Error('etcd did not start');
  const config = parseClusterConfig(`cluster: tlsca\nguest: { module: kv.wasm }\nlisten: [127.0.0.1:7000]\nreplicas:\n  - { id: a, address: 127.0.0.1:7101 }\n  - { id: b, address: 127.0.0.1:7102 }\n` +
    `coordinator: { backend: etcd, endpoints: [${serverOnlyTls.endpoint}], tls: { ca: ${ca} } }\n`, '/tmp/x.yaml');
  if (config.coordinator.backend !== 'etcd') throw new Error('not etcd');
  const { tls } = etcdOptionsFor(config, config.coordinator);
  t.deepEqual(tls, { caFile: ca });
  const cs = new Coordinators(serverOnlyTls, uniqueCluster('tls-ca-only'), { tls: tls!, requestTimeoutMs: 2_000 });
  try {
    await cs.client().proposeView(0, { view: 1, primary: 'a', backups: ['b'] });
    t.is((await cs.client().readView())?.view, 1);
  } finally {
    await cs.closeAll();
  }
});
