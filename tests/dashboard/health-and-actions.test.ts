import test from 'ava';
import { validateActionArgs } from '../../dashboard/actions.js';
import { inSyncHealth, primaryHealth } from '../../dashboard/health.js';
import type { ClusterState, MemberState } from '../../dashboard/model.js';
import { startClusterDashboard } from '../../dashboard/start-dashboard.js';
import { freePort } from '../../bench/support/servers.js';
import { isWaterbearError } from '../../libos-host/errors.js';
import { parseClusterConfig } from '../../replica/config/cluster-config.js';
import { REPO } from '../helpers/lvm.js';

const member = (id: string, m: Partial<MemberState>): MemberState => ({
  id, kind: 'replica', address: '127.0.0.1:1', dashboard: null, up: true, role: 'backup', view: 3, epoch: 10, inView: true,
  lagEpochs: 0, lagSeconds: 0, inSync: true, lastSeenAt: 1, error: null, serviceParked: false, ...m,
});
const cluster = (members: MemberState[], more: Partial<ClusterState> = {}): ClusterState => ({
  cluster: 't', at: 1, view: 3, primary: 'a', backups: ['b'], protection: 'PROTECTED', members, primaryNumbers: null, servedBy: 'b', admin: { enabled: false }, startedAt: 1, ...more,
});
const bounds = { maxLagMs: 1000, maxLagEpochs: 16 };

test('primary health is 200 only where the replica is primary', (t) => {
  const c = cluster([member('a', { role: 'primary', inView: false }), member('b', {})]);
  t.is(primaryHealth(c, { self: 'a', localRole: 'primary' }).status, 200);
  const b = primaryHealth(c, { self: 'b', localRole: 'backup' });
  t.is(b.status, 503);
  t.is(b.body.primary, 'a');
  t.is(primaryHealth(cluster([], { primary: null, protection: 'NO PRIMARY' }), { self: null, localRole: null }).status, 503);
  t.is(primaryHealth(c, { self: null, localRole: null }).status, 200);
  // A primary that freed the service address (lease lost) sends the load balancer elsewhere.
  const parked = primaryHealth(c, { self: 'a', localRole: 'primary', localParked: true });
  t.is(parked.status, 503);
  t.regex(parked.body.reason, /freed the service address/);
});

test('in-sync health: a backup in the view within the bound is 200; behind it, or outside the view, is 503', (t) => {
  const s = { self: 'b', localRole: 'backup' };
  t.is(inSyncHealth(cluster([member('b', { lagEpochs: 2, lagSeconds: 0.01 })]), s, bounds).status, 200);
  t.is(inSyncHealth(cluster([member('b', { lagEpochs: 17, lagSeconds: 0.01 })]), s, bounds).status, 503);
  const slow = inSyncHealth(cluster([member('b', { lagEpochs: 1, lagSeconds: 2.5 })]), s, bounds);
  t.is(slow.status, 503);
  t.is(slow.body.lagSeconds, 2.5);
  t.is(inSyncHealth(cluster([member('b', { inView: false, lagEpochs: null, lagSeconds: null })]), { self: 'b', localRole: 'joining' }, bounds).status, 503);
  t.is(inSyncHealth(cluster([member('b', {})], { primary: null, protection: 'NO PRIMARY' }), s, bounds).status, 503);
  // A stricter bound from the query string.
  t.is(inSyncHealth(cluster([member('b', { lagEpochs: 2, lagSeconds: 0.01 })]), s, { maxLagMs: 1000, maxLagEpochs: 1 }).status, 503);
});

test('in-sync health on the primary and on the cluster dashboard follows PROTECTED', (t) => {
  t.is(inSyncHealth(cluster([]), { self: 'a', localRole: 'primary' }, bounds).status, 200);
  t.is(inSyncHealth(cluster([], { protection: 'UNPROTECTED', backups: [] }), { self: 'a', localRole: 'primary' }, bounds).status, 503);
  t.is(inSyncHealth(cluster([], { protection: 'UNPROTECTED', backups: [] }), { self: null, localRole: null }, bounds).status, 503);
});

const CONFIG = (ports: number[]): string => `cluster: offline
guest: { module: ${REPO}guests/kv.wasm }
listen: [127.0.0.1:${ports[0]}]
replicas:
  - { id: a, address: 127.0.0.1:${ports[1]} }
  - { id: b, address: 127.0.0.1:${ports[2]} }
witnesses:
  - { id: w, address: 127.0.0.1:${ports[3]} }
`;

test('action arguments are checked against the cluster file with WB_BAD_REQUEST', (t) => {
  const config = parseClusterConfig(CONFIG([1, 2, 3, 4]), 'test.yaml');
  t.deepEqual(validateActionArgs('switchover', { target: 'b' }, config), { target: 'b' });
  t.deepEqual(validateActionArgs('remove-backup', { replica: 'a' }, config), { replica: 'a' });
  for (const [name, body] of [['switchover', {}], ['switchover', { target: 'w' }], ['add-backup', { replica: 3 }]] as const) {
    const err = t.throws(() => validateActionArgs(name, body, config));
    t.true(isWaterbearError(err, 'WB_BAD_REQUEST'));
  }
  // A missing field (or a null body) is named as missing, not as "got undefined".
  for (const body of [null, {}]) {
    t.regex(t.throws(() => validateActionArgs('remove-backup', body, config))!.message, /remove-backup needs "replica": one of the cluster's replicas \(a, b\): got none$/);
  }
});

test('a dashboard without an admin token refuses actions with 403 and still serves state and health', async (t) => {
  const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
  const config = parseClusterConfig(CONFIG(ports), 'offline.yaml');
  const d = await startClusterDashboard(config, { listen: '127.0.0.1:0', adminToken: null, pollIntervalMs: 50 });
  t.teardown(() => d.stop());
  const action = await fetch(`${d.url}api/actions/checkpoint`, { method: 'POST', headers: { authorization: 'Bearer x' }, body: '{}' });
  t.is(action.status, 403);
  t.is(((await action.json()) as { error: { code: string } }).error.code, 'WB_ADMIN_DISABLED');
  const events = await fetch(`${d.url}api/events`, { method: 'POST', body: JSON.stringify({ message: 'x' }) });
  t.is(events.status, 403);
  t.is((await fetch(`${d.url}api/admin/check`, { method: 'POST', headers: { authorization: 'Bearer x' } })).status, 403);
  await d.monitor.pollOnce();
  await d.monitor.pollOnce();
  const state = (await (await fetch(`${d.url}api/state`)).json()) as { cluster: ClusterState };
  t.is(state.cluster.protection, 'NO PRIMARY');
  t.false(state.cluster.admin.enabled);
  t.true(state.cluster.members.every((m) => !m.up && m.role === 'down'));
  const h = await fetch(`${d.url}health/primary`);
  t.is(h.status, 503);
  t.is(((await h.json()) as { ok: boolean }).ok, false);
  const metrics = await (await fetch(`${d.url}metrics`)).text();
  t.regex(metrics, /waterbear_cluster_protected\{cluster="offline"\} 0/);
  t.regex(metrics, /waterbear_cluster_member_up\{member="a",kind="replica",cluster="offline"\} 0/);
  t.is((await fetch(`${d.url}nope`)).status, 404);
});

test('the token check answers 200 for the admin token, 401 for another or none, and adds nothing to the timeline', async (t) => {
  const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
  const config = parseClusterConfig(CONFIG(ports), 'offline.yaml');
  const d = await startClusterDashboard(config, { listen: '127.0.0.1:0', adminToken: 'right', pollIntervalMs: 50 });
  t.teardown(() => d.stop());
  const check = (headers: Record<string, string>): Promise<Response> => fetch(`${d.url}api/admin/check`, { method: 'POST', headers });
  const before = d.monitor.timeline().length;
  const ok = await check({ authorization: 'Bearer right' });
  t.is(ok.status, 200);
  t.deepEqual(await ok.json(), { ok: true });
  const wrong = await check({ authorization: 'Bearer wrong' });
  t.is(wrong.status, 401);
  t.deepEqual(((await wrong.json()) as { error: unknown }).error, { code: 'WB_UNAUTHORIZED', message: 'wrong admin token' });
  t.is((await check({})).status, 401);
  t.is(d.monitor.timeline().length, before, 'a check is not an action');
});
