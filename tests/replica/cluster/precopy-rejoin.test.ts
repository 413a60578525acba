import test from 'ava';
import net from 'node:net';
import { startTestCluster, until, type TestCluster } from '../../helpers/cluster.js';
import { REPO } from '../../helpers/lvm.js';

const MEMSTRESS_MB = 32;
const PAGES = (MEMSTRESS_MB * 1024 * 1024) / 4096;

/** One memstress line request on a fresh connection. */
async function line(c: TestCluster, request: string, timeoutMs = 20_000): Promise<string> {
  const sock = await until('a connection', () => new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(c.servicePort, '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  }));
  try {
    return await new Promise<string>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`no reply to ${request} within ${timeoutMs} ms`)), timeoutMs);
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => { buf += d; const nl = buf.indexOf('\n'); if (nl >= 0) { clearTimeout(timer); resolve(buf.slice(0, nl)); } });
      sock.on('error', (e) => { clearTimeout(timer); reject(e); });
      // A primary that lost its role closes its clients' connections: the request may be lost.
      sock.on('close', () => { clearTimeout(timer); reject(new Error(`connection closed before a reply to ${request}`)); });
      sock.write(`${request}\n`);
    });
  } finally { sock.destroy(); }
}

interface Stats { precopies: number; precopyPages: number }
const primaryStats = async (c: TestCluster): Promise<Stats> => (JSON.parse((await c.primary()).statusJson) as { stats: Stats }).stats;

/**
 * Re-protection of a guest above `precopyMinBytes` (32 MiB memstress, precopyMinBytes 16 MiB) uses
 * iterative pre-copy while the guest keeps writing pages; the backup it built must be exact: after
 * the primary is killed, memstress on the new primary re-checks the last value written to every
 * one of its pages (a page the pre-copy missed or left stale answers "ERR corrupt page").
 */
test('a backup that rejoins a large guest gets its image by pre-copy while the guest writes, and takes over with every page intact', async (t) => {
  const c = await startTestCluster({ guest: `${REPO}guests/memstress.wasm`, guestEnv: { MEMSTRESS_MB: String(MEMSTRESS_MB) }, replication: '{ precopyMinBytes: 16MiB }' }); // the default, stated
  t.teardown(() => c.stop());
  const p = await c.protectedPrimary(1, 60_000);
  // Retried only when the connection closes (a failover at startup); a held reply fails at 20 s.
  let first = '';
  for (let attempt = 1; first === ''; attempt++) {
    try { first = await line(c, `TOUCH ${PAGES}`); } catch (e) { if (attempt === 3 || !/connection closed/.test((e as Error).message)) throw e; }
  }
  t.regex(first, /^OK /, 'every page written once');
  const backup = p.backups[0];
  const before = await primaryStats(c);

  // Load that keeps dirtying pages while the restarted backup is pre-copied.
  let stop = false;
  let touches = 0;
  const errors: string[] = [];
  const load = (async () => {
    const deadline = Date.now() + 90_000;
    while (!stop && Date.now() < deadline) {
      try {
        const r = await line(c, 'TOUCH 64', 5000);
        if (r.startsWith('ERR')) errors.push(r); else touches++;
      } catch { await new Promise((r) => setTimeout(r, 20)); }
    }
  })();
  process.kill(c.cluster.pid(backup)!, 'SIGKILL'); // the supervisor restarts it; it rejoins
  await until('the backup out of the view', async () => { const q = await c.primary(); return !q.backups.includes(backup) || null; }, 30_000);
  const again = await c.protectedPrimary(1, 60_000);
  t.deepEqual(again.backups, [backup]);
  const after = await primaryStats(c);
  t.true(after.precopies > before.precopies, `the full image went by pre-copy (${JSON.stringify(after)})`);
  t.true(after.precopyPages >= PAGES, `every non-zero page was staged at least once (${after.precopyPages} of ${PAGES})`);
  const touchesAtRejoin = touches;
  await until('more load on the protected cluster', () => touches >= touchesAtRejoin + 20 || null, 30_000);
  stop = true;
  await load;
  t.deepEqual(errors, []);

  // The rejoined backup takes over: every page must hold what the old primary last wrote.
  process.kill(c.cluster.pid(again.replicaId)!, 'SIGKILL');
  await until('the pre-copied backup as primary', async () => { const q = await c.primary(); return q.replicaId === backup || null; }, 30_000);
  const check = await line(c, `TOUCH ${PAGES}`, 60_000);
  t.regex(check, /^OK /, `after failover to the pre-copied backup: ${check}`);
});
