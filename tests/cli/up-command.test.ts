/**
 * `waterbear up` clears the members' data folders (without --keep-data) only once the start will
 * go ahead: a start it refuses (a bad cluster file, a TLS file that is missing or not PEM) loses
 * nothing.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runWaterbear } from '../helpers/cli.js';
import { clusterFileNotRunning } from '../helpers/cluster.js';

test('up: a start refused for a bad TLS file keeps the members\' data folders', async (t) => {
  const { file, dir, config } = await clusterFileNotRunning('up-refused');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const notPem = join(dir, 'not-pem.txt');
  writeFileSync(notPem, 'not a pem\n');
  const markers = [...config.replicas, ...config.witnesses].map((m) => {
    mkdirSync(m.dataDir, { recursive: true });
    const marker = join(m.dataDir, 'marker');
    writeFileSync(marker, 'keep me');
    return marker;
  });
  const base = JSON.parse(readFileSync(file, 'utf8')) as object;
  for (const [tls, refusal] of [
    [{ ca: notPem, cert: notPem, key: notPem }, /tls\.ca .*not-pem\.txt is not a PEM certificate.*\[WB_CONFIG_INVALID\]/],
    [{ ca: join(dir, 'missing.pem'), cert: notPem, key: notPem }, /cannot read the TLS file tls\.ca .*missing\.pem: ENOENT.*\[WB_CONFIG_INVALID\]/],
  ] as const) {
    writeFileSync(file, JSON.stringify({ ...base, tls }));
    const r = await runWaterbear(['up', '--config', file], { timeoutMs: 30_000 });
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, refusal);
    for (const marker of markers) t.true(existsSync(marker), `${marker} was deleted by a refused start`);
  }
});
