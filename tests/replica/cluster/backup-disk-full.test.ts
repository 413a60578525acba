import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startTestCluster, until } from '../../helpers/cluster.js';
import { fillDisk, smallTmpfs } from '../../helpers/small-disk.js';

// A backup whose disk fills up. Its store refuses checkpoints cleanly (WB_STORE_FULL) and the
// primary goes on without it; lmdb-js's stray rejections of the failed commit once killed it
// (unhandled), and a restarted member whose Raft store could not be written stopped coordinating
// but stayed up, "starting" for ever: the cluster stayed UNPROTECTED after space came back.

/** Generous: a rejoin with a full image on a busy 2-core machine. */
const REPROTECTION_TIMEOUT_MS = 90_000;

test('a backup whose disk fills up loses nothing, and the cluster is protected again once there is space', async (t) => {
  const small = smallTmpfs(t, '24m');
  if (small === null) { t.pass('skipped: see the log'); return; }
  const logDir = mkdtempSync(join(tmpdir(), 'wb-disk-full-'));
  const log = join(logDir, 'members.log');
  const c = await startTestCluster({ dataDirs: { b: join(small, 'b') }, stderrFile: log });
  t.teardown(async () => { await c.stop(); rmSync(logDir, { recursive: true, force: true }); });
  const first = await c.protectedPrimary(1, 60_000);
  t.deepEqual(first.backups, ['b']);
  const client = await c.client();
  t.teardown(() => client.close());

  const filler = fillDisk(small);
  // Every write dirties new pages, which b has no room for: each must still be answered.
  const value = (i: number): string => `${i}:`.padEnd(8192, String.fromCharCode(97 + (i % 26)));
  for (let i = 0; i < 400; i++) t.is(await client.call('SET', `k${i}`, value(i)), 'OK', `SET k${i}`);
  rmSync(filler);
  const again = await until('b protecting the primary again', async () => {
    const p = await c.protectedPrimary(1, 5_000);
    return p.view > first.view && p.backups.includes('b') ? p : null;
  }, REPROTECTION_TIMEOUT_MS);
  t.is(again.replicaId, first.replicaId);
  for (let i = 0; i < 400; i += 37) t.is(await client.call('GET', `k${i}`), value(i), `GET k${i}`);
  const printed = readFileSync(log, 'utf8');
  t.notRegex(printed, /Commit failed \(see commitError|Unhandled|unhandled/, 'no stray rejection from lmdb');
});
