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

test('up: a start refused for a missing or invalid guest, a dataDir that is a file, or a bad etcd TLS file keeps the data folders', async (t) => {
  const { file, dir, config } = await clusterFileNotRunning('up-refused-more');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const notPem = join(dir, 'not-pem.txt');
  writeFileSync(notPem, 'not a pem\n');
  const notWasm = join(dir, 'not.wasm');
  writeFileSync(notWasm, 'not wasm');
  const marker = join(config.replicas[0].dataDir, 'marker');
  mkdirSync(config.replicas[0].dataDir, { recursive: true });
  writeFileSync(marker, 'keep me');
  const base = JSON.parse(readFileSync(file, 'utf8')) as { guest: object; replicas: Array<Record<string, string>>; witnesses: unknown };
  const fileInTheWay = join(dir, 'in-the-way');
  const cases: Array<[string, object, RegExp, number]> = [
    ['missing guest', { ...base, guest: { module: join(dir, 'missing.wasm') } }, /guest\.module: cannot read .*missing\.wasm: ENOENT.*\[WB_CONFIG_INVALID\]/, 2],
    ['invalid guest', { ...base, guest: { module: notWasm } }, /guest\.module .*not\.wasm is not a valid WebAssembly module.*\[WB_INVALID_MODULE\]/, 1],
    ['dataDir a file', { ...base, replicas: [base.replicas[0], { ...base.replicas[1], dataDir: fileInTheWay }] }, /the dataDir of replica b .*in-the-way is not a directory.*\[WB_CONFIG_INVALID\]/, 2],
    ['etcd TLS', { ...base, witnesses: undefined, coordinator: { backend: 'etcd', endpoints: ['https://127.0.0.1:2379'], tls: { ca: notPem } } }, /caFile .*not-pem\.txt.*not a PEM.*\[WB_CONFIG_INVALID\]/, 2],
  ];
  for (const [what, cluster, refusal, code] of cases) {
    writeFileSync(fileInTheWay, 'a file, kept');
    writeFileSync(file, JSON.stringify(cluster));
    const r = await runWaterbear(['up', '--config', file], { timeoutMs: 30_000 });
    t.is(r.code, code, `${what}: ${r.stderr}`);
    t.regex(r.stderr, refusal, what);
    t.true(existsSync(marker), `${what}: the data folder was cleared by a refused start`);
    t.is(readFileSync(fileInTheWay, 'utf8'), 'a file, kept', what);
  }
});
