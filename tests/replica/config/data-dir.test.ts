/**
 * A member's dataDir that is a file (or lies under one) is a WB_CONFIG_INVALID naming it, from
 * the replica and the witness alike, never a raw EEXIST from mkdir.
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { ensureDataDir } from '../../../replica/config/data-dir.js';
import { runWaterbear } from '../../helpers/cli.js';
import { clusterFileNotRunning } from '../../helpers/cluster.js';

test('ensureDataDir creates missing directories, keeps existing ones, and refuses a file in the way', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wb-data-dir-'));
  ensureDataDir(join(dir, 'a', 'b'), 'the dataDir of replica a');
  t.true(statSync(join(dir, 'a', 'b')).isDirectory());
  ensureDataDir(join(dir, 'a', 'b'), 'the dataDir of replica a');
  const file = join(dir, 'file');
  writeFileSync(file, 'x');
  for (const path of [file, join(file, 'below')]) {
    const err = t.throws(() => ensureDataDir(path, 'the dataDir of replica a'));
    t.true(isWaterbearError(err, 'WB_CONFIG_INVALID'), String(err));
    t.is(err?.message, `the dataDir of replica a ${path} is not a directory (a file is in the way): point it at a directory, or move the file`);
  }
});

test('replica and witness refuse a dataDir that is a file with a clear error and exit 2', async (t) => {
  const { file, dir } = await clusterFileNotRunning('data-dir-file');
  // One file each: two members on one machine may not share a dataDir (refused at parse).
  const inTheWay = (id: string): string => join(dir, `in-the-way-${id}`);
  for (const id of ['a', 'w']) writeFileSync(inTheWay(id), 'not a directory');
  const cluster = JSON.parse(readFileSync(file, 'utf8')) as { replicas: Array<{ dataDir: string }>; witnesses: Array<{ dataDir: string }> };
  cluster.replicas[0].dataDir = inTheWay('a');
  cluster.witnesses[0].dataDir = inTheWay('w');
  writeFileSync(file, JSON.stringify(cluster));
  for (const [kind, id] of [['replica', 'a'], ['witness', 'w']]) {
    const r = await runWaterbear([kind, '--config', file, '--id', id], { timeoutMs: 30_000 });
    t.is(r.code, 2, `${kind}: ${r.stderr}`);
    t.regex(r.stderr, new RegExp(`the dataDir of ${kind} ${id} .*in-the-way-${id} is not a directory.*\\[WB_CONFIG_INVALID\\]`));
    t.notRegex(r.stderr, /\n\s+at /, `${kind}: no stack trace`);
  }
});
