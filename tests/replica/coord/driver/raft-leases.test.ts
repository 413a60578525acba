/**
 * Real members over gRPC on loopback: liveness leases (lease.ts) on the embedded Raft.
 * Times are epoch milliseconds from performance.timeOrigin + performance.now() in each process: on one
 * machine they agree to well within the 5 ms slack used below.
 */
import test from 'ava';
import { epochNowMs } from '../../../../replica/coord/raft-driver/raft-member-harness.js';
import { MemberCluster, view } from './helpers/member-cluster.js';

const TTL_MS = 500;
const DRIFT = 0.01;
const MARGIN_MS = 50;
const GRANTOR_BOUND_MS = TTL_MS * (1 + DRIFT) + MARGIN_MS;
const HOLDER_WINDOW_MS = TTL_MS * (1 - DRIFT) - MARGIN_MS;
const CLOCK_SLACK_MS = 5;

interface LeaseState { expired: boolean; lastConfirmedEpochMs: number | null; nowEpochMs: number }

test.serial('a holder that stops renewing fences itself, and awaitLeaseExpiry on another member resolves only after the grantor bound', async (t) => {
  const cluster = await MemberCluster.start(t);
  t.true((await cluster.get('a').request('propose', { expected: 0, next: view(1, 'a', ['b']) })).ok);
  const holder = cluster.get('a');
  const watcher = cluster.get('b');
  await holder.call('keepaliveLoop', { replicaId: 'a', intervalMs: 100 });
  await new Promise((r) => setTimeout(r, 700));
  const held = await holder.call<LeaseState>('leaseExpired', { replicaId: 'a' });
  t.false(held.expired, 'the holder holds its lease while renewing');

  // While renewals continue, the lease never expires at the grantor.
  const early = await watcher.request('awaitLeaseExpiry', { replicaId: 'a', timeoutMs: 1_500 }, 5_000);
  t.is(early.code, 'WB_TIMEOUT');

  await holder.call('stopKeepaliveLoop', { replicaId: 'a' });
  const wait = watcher.request<{ resolvedEpochMs: number }>('awaitLeaseExpiry', { replicaId: 'a', timeoutMs: 5_000 }, 8_000);
  // Holder side: expired once its window from the last confirmed send has passed.
  let fencedAt = 0;
  const deadline = Date.now() + 3_000;
  while (Date.now() < deadline) {
    const s = await holder.call<LeaseState>('leaseExpired', { replicaId: 'a' });
    if (s.expired) { fencedAt = s.nowEpochMs; break; }
    await new Promise((r) => setTimeout(r, 10));
  }
  t.true(fencedAt > 0, 'the holder saw its lease expire');
  const resolved = await wait;
  t.true(resolved.ok, `${resolved.code} ${resolved.message}`);
  const last = (await holder.call<LeaseState>('leaseExpired', { replicaId: 'a' })).lastConfirmedEpochMs!;
  const resolvedAt = resolved.result.resolvedEpochMs;
  t.log(`last confirmed send +${HOLDER_WINDOW_MS} ms = holder deadline; holder fenced at +${(fencedAt - last).toFixed(0)} ms; grantor expiry resolved at +${(resolvedAt - last).toFixed(0)} ms (bound ${GRANTOR_BOUND_MS} ms)`);
  t.true(fencedAt - last >= HOLDER_WINDOW_MS - CLOCK_SLACK_MS, 'the holder keeps its lease for its whole window');
  t.true(fencedAt - last <= HOLDER_WINDOW_MS + 60, 'and sees it expired as soon as the window has passed (10 ms polling)');
  t.true(resolvedAt >= fencedAt, 'the grantor declares expiry only after the holder fenced itself');
  t.true(resolvedAt - last >= GRANTOR_BOUND_MS - CLOCK_SLACK_MS, 'not before the grantor bound from the last renewal');
  t.true(resolvedAt - last <= GRANTOR_BOUND_MS + 400, 'and promptly after it');

  // The revoked lease is not renewed in the same view…
  const refused = await holder.request('keepalive', { replicaId: 'a' });
  t.is(refused.code, 'WB_STALE_VIEW');
  // …until a new view is installed; grants then carry the new view number.
  t.true((await watcher.request('propose', { expected: 1, next: view(2, 'b') })).ok);
  const grant = await holder.request<{ view: number }>('keepalive', { replicaId: 'a' });
  t.true(grant.ok, `${grant.code} ${grant.message}`);
  t.is(grant.result.view, 2);
});

test.serial('a revoked lease is lifted after the quarantine when no view change follows', async (t) => {
  const cluster = await MemberCluster.start(t, ['a', 'b', 'c'], { leaseRevocationQuarantineMs: 600 });
  t.true((await cluster.get('a').request('propose', { expected: 0, next: view(1, 'a', ['b']) })).ok);
  t.true((await cluster.get('a').request('keepalive', { replicaId: 'a' })).ok);
  t.true((await cluster.get('b').request('awaitLeaseExpiry', { replicaId: 'a', timeoutMs: 5_000 }, 8_000)).ok);
  t.is((await cluster.get('a').request('keepalive', { replicaId: 'a' })).code, 'WB_STALE_VIEW');
  const deadline = Date.now() + 5_000;
  let ok = false;
  while (!ok && Date.now() < deadline) {
    ok = (await cluster.get('a').request('keepalive', { replicaId: 'a' })).ok;
    if (!ok) await new Promise((r) => setTimeout(r, 50));
  }
  t.true(ok, 'renewals are granted again after the quarantine');
});

test.serial('a new leader treats every lease as just renewed', async (t) => {
  const cluster = await MemberCluster.start(t);
  t.true((await cluster.get('a').request('propose', { expected: 0, next: view(1, 'a') })).ok);
  const leader = await cluster.waitLeader();
  const survivor = ['a', 'b', 'c'].find((id) => id !== leader)!;
  // A replica that never renewed: the old leader would say "expired" at once.
  t.true((await cluster.get(survivor).request('awaitLeaseExpiry', { replicaId: 'ghost1', timeoutMs: 3_000 }, 5_000)).ok);
  const killedAt = epochNowMs();
  await cluster.get(leader).kill('SIGKILL');
  const r = await cluster.get(survivor).request<{ resolvedEpochMs: number }>('awaitLeaseExpiry', { replicaId: 'ghost2', timeoutMs: 5_000 }, 8_000);
  t.true(r.ok, `${r.code} ${r.message}`);
  const after = r.result.resolvedEpochMs - killedAt;
  t.log(`leader ${leader} killed; the lease of a never-renewed replica expired ${after.toFixed(0)} ms later at the new leader`);
  t.true(after >= GRANTOR_BOUND_MS - CLOCK_SLACK_MS, `resolved ${after} ms after the old leader died`);
});

test.serial('members refuse keepalives with another lease timing', async (t) => {
  const cluster = await MemberCluster.start(t, ['a', 'b', 'c'], {});
  t.true((await cluster.get('a').request('propose', { expected: 0, next: view(1, 'a') })).ok);
  const leader = await cluster.waitLeader();
  const other = ['a', 'b', 'c'].find((id) => id !== leader)!;
  await cluster.get(other).kill('SIGKILL');
  await cluster.startMember(other, { leaseTtlMs: 800 });
  const r = await cluster.get(other).request('keepalive', { replicaId: other });
  t.is(r.code, 'WB_CONFIG_INVALID');
});
