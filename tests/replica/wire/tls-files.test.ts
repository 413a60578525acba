/**
 * The TLS files a cluster file names are checked when they are read: a file that is not PEM, or a
 * key that is not the certificate's, is a WB_CONFIG_INVALID naming the field and the file, for
 * the replica, the witness, status and the dashboard alike, never an OpenSSL stack trace.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import type { TlsConfig } from '../../../replica/config/cluster-config.js';
import { channelCredentials, serverCredentials } from '../../../replica/wire/credentials.js';
import { runWaterbear } from '../../helpers/cli.js';
import { clusterFileNotRunning } from '../../helpers/cluster.js';
import { toolAvailable } from '../../helpers/tools.js';
import { makeTestPki, type TestPki } from '../../helpers/tls-certs.js';

const run = toolAvailable('openssl', 'makes the test certificates') ? test : test.skip;

let pkis: [TestPki, TestPki] | null = null;
/** Two unrelated PKIs, made once. */
function pki(): [TestPki, TestPki] {
  pkis ??= [makeTestPki('good'), makeTestPki('other')];
  return pkis;
}

function refusal(tls: TlsConfig): Error {
  for (const make of [serverCredentials, channelCredentials]) {
    try {
      make(tls);
    } catch (err) {
      if (isWaterbearError(err, 'WB_CONFIG_INVALID')) return err;
      throw err;
    }
  }
  throw new Error('the TLS files were accepted');
}

run('good TLS files make credentials', (t) => {
  const [good] = pki();
  const tls = { ca: good.ca, cert: good.cert, key: good.key };
  t.truthy(serverCredentials(tls));
  t.truthy(channelCredentials(tls));
});

run('a TLS file that is not PEM, a damaged certificate or a key that is not the certificate\'s is refused, naming it', (t) => {
  const [good, other] = pki();
  const text = join(good.dir, 'not-pem.txt');
  writeFileSync(text, 'not a pem\n');
  const damaged = join(good.dir, 'damaged.pem');
  writeFileSync(damaged, readFileSync(good.cert, 'utf8').replace(/^(-----BEGIN CERTIFICATE-----\n)..../m, '$1AAAA'));
  const base = { ca: good.ca, cert: good.cert, key: good.key };
  const cases: Array<[TlsConfig, RegExp]> = [
    [{ ...base, ca: text }, /^tls\.ca .*not-pem\.txt is not a PEM certificate/],
    [{ ...base, ca: good.key }, /^tls\.ca .*key\.pem is not a PEM certificate/],
    [{ ...base, cert: text }, /^tls\.cert .*not-pem\.txt is not a PEM certificate/],
    [{ ...base, cert: damaged }, /^tls\.cert .*damaged\.pem is not a valid PEM certificate/],
    [{ ...base, key: text }, /^tls\.key .*not-pem\.txt is not a PEM private key/],
    [{ ...base, key: other.key }, /^tls\.key .* is not the key of the certificate tls\.cert /],
    [{ ...base, key: join(good.dir, 'missing.pem') }, /cannot read the TLS file tls\.key .*missing\.pem: ENOENT/],
  ];
  for (const [tls, message] of cases) t.regex(refusal(tls).message, message);
});

run('replica, witness, status, dashboard and up refuse a non-PEM TLS file with a clear error and exit 2', async (t) => {
  const { file, dir } = await clusterFileNotRunning('bad-tls');
  const text = join(dir, 'not-pem.txt');
  writeFileSync(text, 'not a pem\n');
  const [good] = pki();
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')) as object, tls: { ca: good.ca, cert: text, key: good.key } }));
  for (const args of [['replica', '--id', 'a'], ['witness', '--id', 'w'], ['status'], ['dashboard', '--listen', '127.0.0.1:0'], ['up', '--keep-data']]) {
    const r = await runWaterbear([...args, '--config', file], { timeoutMs: 30_000 });
    t.is(r.code, 2, `${args[0]}: ${r.stderr}`);
    t.regex(r.stderr, /tls\.cert .*not-pem\.txt is not a PEM certificate.*\[WB_CONFIG_INVALID\]/, args[0]);
    t.notRegex(r.stderr, /\n\s+at /, `${args[0]}: no stack trace`);
  }
});
