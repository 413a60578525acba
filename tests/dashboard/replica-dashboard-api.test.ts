import test from 'ava';
import type { ClusterState, DashboardState } from '../../dashboard/model.js';
import { startTestCluster, until, type TestCluster } from '../helpers/cluster.js';

// One real cluster (replicas a and b with dashboards, witness w, each its own process) for the
// API, metrics, health and action checks of a replica's dashboard.
const TOKEN = 'test-admin-token';
let c: TestCluster;

const url = (id: string, path: string): string => `http://${c.config.replicas.find((r) => r.id === id)!.dashboard}${path}`;
const getJson = async <T>(u: string): Promise<{ status: number; body: T }> => { const r = await fetch(u); return { status: r.status, body: await r.json() as T }; };
const post = async (u: string, body: unknown, token?: string): Promise<{ status: number; body: { ok?: boolean; result?: Record<string, unknown>; error?: { code: string; message: string } } }> => {
  const r = await fetch(u, { method: 'POST', headers: { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() as never };
};

test.before(async () => {
  c = await startTestCluster({ dashboards: true, env: { WATERBEAR_ADMIN_TOKEN: TOKEN } });
  const p = await c.protectedPrimary();
  // Both dashboards see the protected view (they poll Status several times a second).
  for (const id of ['a', 'b']) {
    await until(`dashboard ${id} sees view ${p.view}`, async () => (await getJson<ClusterState>(url(id, '/api/cluster'))).body.protection === 'PROTECTED' || null);
  }
});
test.after.always(async () => { await c?.stop(); });

/**
 * Wait until the cluster is protected and `id`'s dashboard sees it and has heard from every member
 * (on a loaded machine a backup link can time out and the cluster runs unprotected until the
 * backup rejoins, and a first Status probe can miss its deadline while the channel connects).
 */
async function settled(id?: string): Promise<{ primary: string; backup: string; view: number }> {
  const p = await c.protectedPrimary();
  const backup = p.replicaId === 'a' ? 'b' : 'a';
  await until(`dashboard ${id ?? backup} sees the protected view ${p.view}`, async () => {
    const s = (await getJson<ClusterState>(url(id ?? backup, '/api/cluster'))).body;
    return s.protection === 'PROTECTED' && s.view === p.view && s.members.find((m) => m.id === backup)?.role === 'backup' && s.members.every((m) => m.up) || null;
  });
  return { primary: p.replicaId, backup, view: p.view };
}

test.serial('the state API shows each member with its role, the view and PROTECTED', async (t) => {
  const { backup } = await settled();
  const p = await c.primary();
  const { status, body } = await getJson<DashboardState>(url(backup, '/api/state'));
  t.is(status, 200);
  t.is(body.cluster.protection, 'PROTECTED');
  t.is(body.cluster.primary, p.replicaId);
  t.is(body.cluster.view, p.view);
  t.is(body.cluster.servedBy, backup);
  t.true(body.cluster.admin.enabled);
  const roles = Object.fromEntries(body.cluster.members.map((m) => [m.id, m.role]));
  t.deepEqual(roles, { [p.replicaId]: 'primary', [backup]: 'backup', w: 'witness' });
  const b = body.cluster.members.find((m) => m.id === backup)!;
  t.true(b.inView);
  t.not(b.lagEpochs, null);
  t.true(body.guest.imports.some((i) => i.name === 'sock_accept' && i.supported));
  t.deepEqual(body.guest.listeners, c.config.listen);
  t.true(body.timeline.some((e) => e.kind === 'observed' || e.kind === 'view-change'));
});

test.serial('metrics are exposed for Prometheus in base units with _total counters', async (t) => {
  await settled();
  const p = await c.primary();
  const client = await c.client();
  for (let i = 0; i < 20; i++) await client.call('SET', `k${i}`, 'v');
  client.close();
  const text = await until('checkpoints counted', async () => {
    const r = await fetch(url(p.replicaId, '/metrics'));
    const s = await r.text();
    return /waterbear_guest_received_bytes_total\{[^}]*\} [1-9]/.test(s) && /waterbear_protected\{[^}]*\} 1/.test(s) ? s : null;
  });
  t.regex(text, /waterbear_role\{role="primary",replica="[ab]",cluster="test"\} 1/);
  t.regex(text, /waterbear_protected\{[^}]*\} 1/);
  t.regex(text, /waterbear_service_parked\{[^}]*\} 0/);
  t.regex(text, new RegExp(`waterbear_view\\{[^}]*\\} ${p.view}`));
  t.regex(text, /waterbear_checkpoints_total\{[^}]*\} [1-9]/);
  t.regex(text, /waterbear_checkpoint_bytes_bucket\{le="65536"/);
  t.regex(text, /waterbear_checkpoint_pages_total\{encoding="delta",[^}]*\} [1-9]/);
  t.regex(text, /waterbear_checkpoint_pages_total\{encoding="whole",[^}]*\} [1-9]/);
  t.regex(text, /# TYPE waterbear_checkpoints_refused_total counter/);
  t.regex(text, /waterbear_checkpoint_pause_seconds_count\{[^}]*\} [1-9]/);
  t.regex(text, /waterbear_output_commit_latency_seconds_count\{[^}]*\} [1-9]/);
  t.regex(text, /waterbear_replication_lag_epochs\{backup="[ab]"/);
  t.regex(text, /waterbear_replication_lag_seconds\{backup="[ab]"/);
  t.regex(text, /waterbear_held_output_bytes\{/);
  t.regex(text, /waterbear_guest_memory_bytes\{[^}]*\} [1-9]/);
  t.regex(text, /waterbear_failovers_total\{/);
  const backup = p.replicaId === 'a' ? 'b' : 'a';
  const b = await (await fetch(url(backup, '/metrics'))).text();
  t.regex(b, /waterbear_role\{role="backup",[^}]*\} 1/);
  t.regex(b, /waterbear_checkpoints_applied_total\{[^}]*\} [1-9]/);
});

test.serial('the primary\'s numbers carry the reply latency output commit added over the last minute', async (t) => {
  const { backup } = await settled();
  const client = await c.client();
  for (let i = 0; i < 5; i++) await client.call('SET', `recent${i}`, 'v');
  client.close();
  const n = await until('a recent commit latency', async () => {
    const s = (await getJson<ClusterState>(url(backup, '/api/cluster'))).body.primaryNumbers;
    return s !== null && s.recentCommitLatencyMs !== null ? s : null;
  });
  t.true(n.recentCommitLatencyMs! > 0 && n.recentCommitLatencyMs! < 10_000, `${n.recentCommitLatencyMs} ms`);
  t.true(n.commitLatencyCount > 0);
});

test.serial('health endpoints answer 200 only on the primary, and on an in-sync backup', async (t) => {
  const { primary, backup } = await settled();
  await settled(primary);
  const p = await c.primary();
  const onPrimary = await getJson<{ ok: boolean; role: string }>(url(p.replicaId, '/health/primary'));
  t.is(onPrimary.status, 200);
  t.is(onPrimary.body.role, 'primary');
  const onBackup = await getJson<{ ok: boolean; primary: string }>(url(backup, '/health/primary'));
  t.is(onBackup.status, 503);
  t.is(onBackup.body.primary, p.replicaId);
  const inSync = await until('the backup in sync', async () => { const r = await getJson<{ ok: boolean }>(url(backup, '/health/in-sync')); return r.status === 200 ? r : null; });
  t.true(inSync.body.ok);
  await until('the PROTECTED primary in sync', async () => (await getJson(url(p.replicaId, '/health/in-sync'))).status === 200 || null);
});

test.serial('actions without the admin token are refused with 401 and a JSON error', async (t) => {
  const p = await c.primary();
  const none = await post(url(p.replicaId, '/api/actions/checkpoint'), {});
  t.is(none.status, 401);
  t.is(none.body.error?.code, 'WB_UNAUTHORIZED');
  const wrong = await post(url(p.replicaId, '/api/actions/checkpoint'), {}, 'nope');
  t.is(wrong.status, 401);
  t.is(wrong.body.error?.code, 'WB_UNAUTHORIZED');
  const bad = await post(url(p.replicaId, '/api/actions/switchover'), { target: 'zz' }, TOKEN);
  t.is(bad.status, 400);
  t.is(bad.body.error?.code, 'WB_BAD_REQUEST');
  const unknown = await post(url(p.replicaId, '/api/actions/explode'), {}, TOKEN);
  t.is(unknown.status, 404);
});

test.serial("a checkpoint asked on the backup's dashboard is run on the primary and logged in the timeline", async (t) => {
  const p = await c.primary();
  const backup = p.replicaId === 'a' ? 'b' : 'a';
  const r = await until('a checkpoint at a suspension point', async () => {
    const x = await post(url(backup, '/api/actions/checkpoint'), {}, TOKEN);
    return x.status === 200 ? x : null; // 503 WB_TIMEOUT when the guest was running: try again
  });
  t.true(r.body.ok);
  t.is(r.body.result?.replica, p.replicaId);
  t.true(Number(r.body.result?.epoch) > 0);
  const tl = await getJson<Array<{ kind: string; message: string }>>(url(backup, '/api/timeline'));
  t.true(tl.body.some((e) => e.kind === 'admin' && e.message.startsWith('checkpoint: done')));
});

test.serial('live updates arrive as Server-Sent Events: the full state first, then cluster updates', async (t) => {
  const ctrl = new AbortController();
  const res = await fetch(url('a', '/api/stream'), { signal: ctrl.signal });
  t.is(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const reader = res.body!.getReader();
  let text = '';
  const dec = new TextDecoder();
  while (!text.includes('event: cluster')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  ctrl.abort();
  const first = /event: (\w+)\ndata: (.*)\n/.exec(text);
  t.is(first?.[1], 'state');
  const state = JSON.parse(first![2]) as DashboardState;
  t.is(state.cluster.cluster, 'test');
  t.true(text.includes('event: cluster'));
});

test.serial('an external tool can add a fault to the timeline with the token', async (t) => {
  t.is((await post(url('a', '/api/events'), { kind: 'fault', message: 'nemesis: partition a|b' })).status, 401);
  const ok = await post(url('a', '/api/events'), { kind: 'fault', message: 'nemesis: partition a|b', source: 'chaos' }, TOKEN);
  t.is(ok.status, 200);
  const tl = await getJson<Array<{ kind: string; message: string; source: string }>>(url('a', '/api/timeline'));
  t.true(tl.body.some((e) => e.kind === 'fault' && e.source === 'chaos' && e.message === 'nemesis: partition a|b'));
});
