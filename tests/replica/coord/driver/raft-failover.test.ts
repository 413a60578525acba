/**
 * Real members over gRPC on loopback: leader failover by kill -9, and recovery from LMDB after restarts.
 */
import test from 'ava';
import { epochNowMs } from '../../../../replica/coord/raft-driver/raft-member-harness.js';
import { MAX_ELECTION_TIMEOUT_MS, MemberCluster, view } from './helpers/member-cluster.js';

test.serial('after kill -9 of the leader, a surviving member commits a view within 2 election timeouts', async (t) => {
  const cluster = await MemberCluster.start(t);
  t.true((await cluster.get('a').request('propose', { expected: 0, next: view(1, 'a', ['b']) })).ok);
  let current = 1;
  for (let round = 0; round < 3; round++) {
    const leader = await cluster.waitLeader();
    const survivor = ['a', 'b', 'c'].find((id) => id !== leader)!;
    const killedAt = epochNowMs();
    await cluster.get(leader).kill('SIGKILL');
    const r = await cluster.get(survivor).request('propose', { expected: current, next: view(current + 1, survivor) }, 10_000);
    t.true(r.ok, `round ${round}: ${r.code} ${r.message}`);
    const failoverMs = r.doneEpochMs - killedAt;
    t.log(`round ${round}: killed leader ${leader}; ${survivor} committed view ${current + 1} ${failoverMs.toFixed(0)} ms later (bound ${2 * MAX_ELECTION_TIMEOUT_MS} ms)`);
    t.true(failoverMs <= 2 * MAX_ELECTION_TIMEOUT_MS, `failover took ${failoverMs} ms`);
    current++;
    await cluster.startMember(leader);
  }
});

test.serial('members killed with kill -9 recover their state from LMDB, including a compacted log', async (t) => {
  const cluster = await MemberCluster.start(t, ['a', 'b', 'c'], { snapshotEveryEntries: 5 });
  const ids = ['a', 'b', 'c'];
  for (let v = 1; v <= 23; v++) {
    const r = await cluster.get(ids[v % 3]).request('propose', { expected: v - 1, next: view(v, ids[v % 3]) });
    t.true(r.ok, `view ${v}: ${r.code} ${r.message}`);
  }
  // Every member must have applied view 23 before the kill, or it could not recover it on its own.
  for (const id of ids) t.is((await cluster.get(id).call<{ view: number }>('read')).view, 23);
  await Promise.all(ids.map((id) => cluster.get(id).kill('SIGKILL')));
  for (const id of ids) {
    const m = await cluster.startMember(id);
    // Before any network traffic could matter: the local state machine comes from the store alone.
    const local = await m.call<{ view: number } | null>('localView');
    t.is(local?.view, 23, `${id} recovered view ${local?.view}`);
    const st = await m.call<{ snapshotIndex: number; applied: number }>('status');
    t.true(st.snapshotIndex > 0, `${id} compacted its log (snapshot index ${st.snapshotIndex})`);
  }
  t.is((await cluster.get('b').call<{ view: number }>('read')).view, 23);
  t.true((await cluster.get('c').request('propose', { expected: 23, next: view(24, 'c') })).ok);
});

test.serial('a member that was down while the log was compacted catches up from a snapshot', async (t) => {
  const cluster = await MemberCluster.start(t, ['a', 'b', 'c'], { snapshotEveryEntries: 5 });
  t.true((await cluster.get('a').request('propose', { expected: 0, next: view(1, 'a') })).ok);
  const leader = await cluster.waitLeader();
  const follower = ['a', 'b', 'c'].find((id) => id !== leader)!;
  const other = ['a', 'b', 'c'].find((id) => id !== leader && id !== follower)!;
  await cluster.get(follower).kill('SIGKILL');
  for (let v = 2; v <= 20; v++) t.true((await cluster.get(other).request('propose', { expected: v - 1, next: view(v, other) })).ok);
  const leaderStatus = await cluster.get(leader).call<{ snapshotIndex: number }>('status');
  t.true(leaderStatus.snapshotIndex > 5, 'the leader compacted past the follower');
  const m = await cluster.startMember(follower);
  const deadline = Date.now() + 5_000;
  let seen = 0;
  while (Date.now() < deadline) {
    seen = (await m.call<{ view: number } | null>('localView'))?.view ?? 0;
    if (seen === 20) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  t.is(seen, 20);
});
