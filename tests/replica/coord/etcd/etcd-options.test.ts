/** Options of the etcd coordinator: defaults, and WB_CONFIG_INVALID for every bad option (no etcd needed). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { isWaterbearError } from '../../../../libos-host/errors.js';
import { LEASE_TTL_MS } from '../../../../replica/coord/lease.js';
import { EtcdCoordinator } from '../../../../replica/coord/etcd/etcd-coordinator.js';
import {
  ETCD_LEASE_POLL_INTERVAL_MS,
  ETCD_REQUEST_TIMEOUT_MS,
  EtcdKeys,
  resolveEtcdOptions,
  type EtcdCoordinatorOptions,
} from '../../../../replica/coord/etcd/etcd-options.js';
import { makeTestPki } from '../../../helpers/tls-certs.js';
import { toolAvailable } from '../../../helpers/tools.js';

test('defaults: one endpoint is enough; keys live under /waterbear/default/', (t) => {
  const o = resolveEtcdOptions({ endpoints: ['http://127.0.0.1:2379/'] });
  t.deepEqual(o.endpoints, ['http://127.0.0.1:2379']);
  t.false(o.secure);
  t.is(o.requestTimeoutMs, ETCD_REQUEST_TIMEOUT_MS);
  t.is(o.leasePollIntervalMs, ETCD_LEASE_POLL_INTERVAL_MS);
  t.is(o.lease.ttlMs, LEASE_TTL_MS);
  const keys = new EtcdKeys(o);
  t.is(keys.view.toString(), '/waterbear/default/view');
  t.is(keys.lease('r-1').toString(), '/waterbear/default/lease/r-1');
  const k2 = new EtcdKeys(resolveEtcdOptions({ endpoints: ['http://h:1'], keyPrefix: '/', cluster: 'prod.eu' }));
  t.is(k2.view.toString(), '/prod.eu/view');
});

test('constructing a coordinator does not connect', async (t) => {
  const c = new EtcdCoordinator({ endpoints: ['http://127.0.0.1:1'] });
  t.true(c.leaseExpired('r1'));
  t.is(c.lastConfirmedMs('r1'), null);
  await c.close();
  await c.close();
  await t.throwsAsync(c.readView(), { code: 'WB_COORD_UNAVAILABLE' });
});

const dir = mkdtempSync(join(tmpdir(), 'wb-etcd-opts-'));
const pem = join(dir, 'ca.pem');
writeFileSync(pem, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
const notPem = join(dir, 'not-pem.txt');
writeFileSync(notPem, 'not a certificate\n');
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const BAD: Array<[string, unknown]> = [
  ['not an object', null],
  ['no endpoints', {}],
  ['empty endpoints', { endpoints: [] }],
  ['endpoint without scheme', { endpoints: ['127.0.0.1:2379'] }],
  ['endpoint with another scheme', { endpoints: ['unix:///tmp/etcd.sock'] }],
  ['endpoint without port', { endpoints: ['http://127.0.0.1'] }],
  ['endpoint with a path', { endpoints: ['http://127.0.0.1:2379/v3'] }],
  ['endpoint not a string', { endpoints: [2379] }],
  ['mixed http and https', { endpoints: ['http://a:1', 'https://b:1'] }],
  ['tls with http endpoints', { endpoints: ['http://a:1'], tls: { caFile: pem } }],
  ['unreadable CA file', { endpoints: ['https://a:1'], tls: { caFile: join(dir, 'missing.pem') } }],
  ['CA file that is not PEM', { endpoints: ['https://a:1'], tls: { caFile: notPem } }],
  ['CA file with an empty certificate', { endpoints: ['https://a:1'], tls: { caFile: pem } }],
  ['cert without key', { endpoints: ['https://a:1'], tls: { caFile: pem, certFile: pem } }],
  ['unknown option', { endpoints: ['http://a:1'], requestTimeout: 5 }],
  ['keyPrefix without leading slash', { endpoints: ['http://a:1'], keyPrefix: 'waterbear/' }],
  ['keyPrefix without trailing slash', { endpoints: ['http://a:1'], keyPrefix: '/waterbear' }],
  ['keyPrefix with //', { endpoints: ['http://a:1'], keyPrefix: '/a//b/' }],
  ['cluster with a slash', { endpoints: ['http://a:1'], cluster: 'a/b' }],
  ['zero request timeout', { endpoints: ['http://a:1'], requestTimeoutMs: 0 }],
  ['NaN request timeout', { endpoints: ['http://a:1'], requestTimeoutMs: Number.NaN }],
  ['huge request timeout', { endpoints: ['http://a:1'], requestTimeoutMs: 3_600_000 }],
  ['watch max delay below min', { endpoints: ['http://a:1'], watchRetryMinDelayMs: 500, watchRetryMaxDelayMs: 100 }],
  ['negative poll interval', { endpoints: ['http://a:1'], leasePollIntervalMs: -1 }],
  ['TTL not whole seconds', { endpoints: ['http://a:1'], lease: { ttlMs: 1500 } }],
  ['TTL below one second', { endpoints: ['http://a:1'], lease: { ttlMs: 500 } }],
  ['margin beyond a quarter TTL', { endpoints: ['http://a:1'], lease: { ttlMs: 1000, marginMs: 300 } }],
  ['clock without nowMs', { endpoints: ['http://a:1'], clock: {} }],
];

for (const [name, options] of BAD) {
  test(`bad options are refused with WB_CONFIG_INVALID: ${name}`, (t) => {
    const err = t.throws(() => new EtcdCoordinator(options as EtcdCoordinatorOptions));
    t.true(isWaterbearError(err, 'WB_CONFIG_INVALID'), String(err));
  });
}

const withOpenssl = toolAvailable('openssl', 'makes the test certificates') ? test : test.skip;

withOpenssl('TLS files are read and checked at construction', (t) => {
  const pki = makeTestPki('etcd');
  const o = resolveEtcdOptions({ endpoints: ['https://etcd-1:2379', 'https://etcd-2:2379'], tls: { caFile: pki.ca, certFile: pki.cert, keyFile: pki.key } });
  t.true(o.secure);
  t.true(o.credentials?.rootCertificate.toString().includes('BEGIN CERTIFICATE'));
  t.truthy(o.credentials?.certChain);
  t.truthy(o.credentials?.privateKey);
  // A key that is not the certificate's, and a CA file that is not PEM, are refused naming the option.
  const other = makeTestPki('etcd-other');
  t.throws(() => resolveEtcdOptions({ endpoints: ['https://e:1'], tls: { caFile: pki.ca, certFile: pki.cert, keyFile: other.key } }),
    { code: 'WB_CONFIG_INVALID', message: /etcd option tls\.keyFile .* is not the key of the certificate etcd option tls\.certFile/ } as never);
  t.throws(() => resolveEtcdOptions({ endpoints: ['https://e:1'], tls: { caFile: pki.key } }),
    { code: 'WB_CONFIG_INVALID', message: /etcd option tls\.caFile .* is not a PEM certificate/ } as never);
});

test('bad proposals and replica ids are refused before any request', async (t) => {
  const c = new EtcdCoordinator({ endpoints: ['http://127.0.0.1:1'] });
  try {
    await t.throwsAsync(c.proposeView(0, { view: 2, primary: 'a', backups: [] }), { code: 'WB_CONFIG_INVALID' });
    await t.throwsAsync(c.proposeView(-1, { view: 0, primary: 'a', backups: [] }), { code: 'WB_CONFIG_INVALID' });
    await t.throwsAsync(c.proposeView(0, { view: 1, primary: 'a', backups: ['a'] }), { code: 'WB_CONFIG_INVALID' });
    await t.throwsAsync(c.keepAlive('../view'), { code: 'WB_CONFIG_INVALID' });
    await t.throwsAsync(c.awaitLeaseExpiry(''), { code: 'WB_CONFIG_INVALID' });
  } finally {
    await c.close();
  }
});
