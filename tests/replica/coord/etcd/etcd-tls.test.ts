/**
 * The etcd coordinator over TLS with client-certificate authentication. The certificates in
 * fixtures/tls are throwaway test material (a CA, a server certificate for 127.0.0.1 and a client
 * certificate, valid for 100 years); never use them anywhere else.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { startEtcd, type EtcdServer } from '../../../helpers/etcd-server.js';
import { Coordinators, ETCD_SERVER_OPTIONS, etcdTest, HAVE_ETCD, isUnavailable, uniqueCluster } from './etcd-fixture.js';

const TLS_DIR = fileURLToPath(new URL('./fixtures/tls/', import.meta.url));
const ca = join(TLS_DIR, 'ca.pem');
const clientCert = join(TLS_DIR, 'client.pem');
const clientKey = join(TLS_DIR, 'client-key.pem');

let server: EtcdServer | null = null;

test.before(async () => {
  if (!HAVE_ETCD) return;
  server = await startEtcd({
    ...ETCD_SERVER_OPTIONS,
    tls: {
      certFile: join(TLS_DIR, 'server.pem'),
      keyFile: join(TLS_DIR, 'server-key.pem'),
      caFile: ca,
      clientCertFile: clientCert,
      clientKeyFile: clientKey,
    },
  });
});
test.after.always(async () => {
  await server?.stop();
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
