import test from 'ava';
import type { ClusterState, TimelineEvent } from '../../dashboard/model.js';
import { startClusterDashboard } from '../../dashboard/start-dashboard.js';
import { startTestCluster, until } from '../helpers/cluster.js';

// What the dashboard and `waterbear status` report around operator actions must be what happened
// (each check below failed before session 25): a refused switchover is not logged as started, a
// remove-backup answers with the view that dropped the backup, the removed replica reports itself
// removed (not "catching up"), the released epoch follows the captured one while unprotected,
// a backup's own steps (removed, joining, backup) reach the timeline, and a dashboard that starts
// does not invent a view change or a "protection regained".
const TOKEN = 'actions-report-token';

test('operator actions are reported as they happened', async (t) => {
  const c = await startTestCluster({ dashboards: true, env: { WATERBEAR_ADMIN_TOKEN: TOKEN } });
  t.teardown(() => c.stop());
  const p = await c.protectedPrimary(1, 60_000);
  const primary = p.replicaId;
  const backup = p.backups[0];
  const url = (id: string, path: string): string => `http://${c.config.replicas.find((r) => r.id === id)!.dashboard}${path}`;
  const get = async <T>(id: string, path: string): Promise<T> => (await fetch(url(id, path))).json() as Promise<T>;
  const post = async (id: string, action: string, body: unknown): Promise<{ status: number; body: { result?: Record<string, unknown>; error?: { code: string } } }> => {
    const r = await fetch(url(id, `/api/actions/${action}`), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });
    return { status: r.status, body: await r.json() as never };
  };
  const timeline = (id: string): Promise<TimelineEvent[]> => get<TimelineEvent[]>(id, '/api/timeline');

  // A switchover to a replica that is not a backup is refused, and not logged as started.
  const refused = await post(primary, 'switchover', { target: primary });
  t.is(refused.status, 400);
  // Replicas' own events reach the timeline at the dashboard's next polls: give it several.
  await new Promise((r) => setTimeout(r, 1500));
  t.false((await timeline(primary)).some((e) => e.message.startsWith(`planned switchover to ${primary} started`)), 'a refused switchover logged as started');

  // The primary is not a backup: removing or adding it would do nothing, and says so.
  for (const action of ['remove-backup', 'add-backup']) {
    const self = await post(primary, action, { replica: primary });
    t.is(self.status, 400, action);
    t.is(self.body.error?.code, 'WB_BAD_REQUEST', action);
  }

  // remove-backup answers once the view without the backup is committed, with that view.
  const removed = await post(primary, 'remove-backup', { replica: backup });
  t.is(removed.status, 200);
  const after = await c.primary();
  t.is(removed.body.result?.view, after.view);
  t.false(after.backups.includes(backup));

  // The removed replica says so: status, the dashboard, the metrics and its timeline.
  await until(`${backup} reports itself removed`, async () => (await c.cluster.status(backup))?.role === 'removed' || null, 15_000);
  await until(`${primary}'s dashboard shows ${backup} removed`, async () =>
    (await get<ClusterState>(primary, '/api/cluster')).members.find((m) => m.id === backup)?.role === 'removed' || null, 15_000);
  t.regex(await (await fetch(url(backup, '/metrics'))).text(), /waterbear_role\{role="removed"[^}]*\} 1/);
  await until(`${backup}'s timeline says it was removed`, async () =>
    (await timeline(backup)).some((e) => e.kind === 'role' && e.message.startsWith(`${backup} is removed by an operator`)) || null, 15_000);

  // Unprotected, output leaves as it is captured: the released epoch follows.
  const client = await c.client();
  for (let i = 0; i < 20; i++) t.is(await client.call('SET', `k${i}`, String(i)), 'OK');
  client.close();
  await until('released = captured while unprotected', async () => {
    const n = (await get<ClusterState>(primary, '/api/cluster')).primaryNumbers;
    return n !== null && n.capturedEpoch > p.epoch && n.releasedEpoch === n.capturedEpoch || null;
  }, 15_000);

  // Added back: it joins and protects again, and its timeline shows each step.
  t.is((await post(primary, 'add-backup', { replica: backup })).status, 200);
  await until(`${backup} back in the view`, async () => (await c.primary()).backups.includes(backup) || null, 60_000);
  await until(`${backup}'s timeline shows it joining and then a backup`, async () => {
    const roles = (await timeline(backup)).filter((e) => e.kind === 'role').map((e) => e.message);
    const joining = roles.lastIndexOf(`${backup} is joining`);
    return joining >= 0 && roles.lastIndexOf(`${backup} is backup`) > joining || null;
  }, 30_000);

  // A dashboard that starts now records what it found, once: no view change, no protection regained.
  const d = await startClusterDashboard(c.config, { listen: '127.0.0.1:0', adminToken: null });
  t.teardown(() => d.stop());
  const seen = await until('the new dashboard found the cluster', async () => {
    const tl = (await (await fetch(`${d.url}api/timeline`)).json()) as TimelineEvent[];
    return tl.length > 0 ? tl : null;
  }, 15_000);
  await new Promise((r) => setTimeout(r, 1000));
  const tl = (await (await fetch(`${d.url}api/timeline`)).json()) as TimelineEvent[];
  t.is(seen[0].kind, 'observed');
  t.regex(seen[0].message, /^dashboard started watching: PROTECTED, primary/);
  t.false(tl.some((e) => e.kind === 'view-change' || e.kind === 'protection-regained'), JSON.stringify(tl));
  const state = (await (await fetch(`${d.url}api/cluster`)).json()) as ClusterState;
  t.true(state.startedAt > 0 && state.startedAt <= Date.now());
});
