/**
 * Real members over gRPC on loopback: a partitioned old leader cannot commit.
 *
 * The partition is the driver's test-only network (`unsafeTestNetwork`, reachable only through the
 * member harness): the isolated member drops everything it would send to the others and everything it
 * receives from them, and the others do the same towards it — a symmetric partition at the transport,
 * while every process keeps running (unlike SIGSTOP, which would freeze the old leader too).
 */
import test from 'ava';
import { MemberCluster, view } from './helpers/member-cluster.js';

test.serial('a partitioned old leader cannot commit; the majority elects a new leader and commits; after healing all agree', async (t) => {
  const cluster = await MemberCluster.start(t, ['a', 'b', 'c'], { requestTimeoutMs: 1_500 });
  t.true((await cluster.get('a').request('propose', { expected: 0, next: view(1, 'a') })).ok);
  const old = await cluster.waitLeader();
  const rest = ['a', 'b', 'c'].filter((id) => id !== old);
  await cluster.get(old).call('partition', { peers: rest });
  await Promise.all(rest.map((id) => cluster.get(id).call('partition', { peers: [old] })));
  const before = await cluster.get(old).call<{ commit: number; role: string }>('status');
  t.is(before.role, 'leader', 'the isolated member still believes it leads when the proposal arrives');

  // The old leader appends the proposal but can never get it acknowledged by a quorum.
  const isolatedProposal = cluster.get(old).request('propose', { expected: 1, next: view(2, old, ['x']) }, 10_000);
  const newLeader = await cluster.waitLeader(10_000, rest);
  t.not(newLeader, old);
  const majority = await cluster.get(rest[0]).request('propose', { expected: 1, next: view(2, rest[0]) }, 10_000);
  t.true(majority.ok, `${majority.code} ${majority.message}`);

  const r = await isolatedProposal;
  t.false(r.ok, 'the partitioned leader must not commit');
  t.true(r.code === 'WB_TIMEOUT' || r.code === 'WB_COORD_UNAVAILABLE', `got ${r.code}`);
  const during = await cluster.get(old).call<{ commit: number; role: string; view: number }>('status');
  t.is(during.commit, before.commit, 'its commit index did not move');
  t.is(during.view, 1);
  t.not(during.role, 'leader', 'check-quorum made it step down');
  const readWhilePartitioned = await cluster.get(old).request('read', {}, 10_000);
  t.false(readWhilePartitioned.ok, 'no linearizable read without a quorum');

  await cluster.get(old).call('heal');
  await Promise.all(rest.map((id) => cluster.get(id).call('heal')));
  const healed = await cluster.get(old).request<{ view: number; primary: string }>('read', {}, 10_000);
  t.true(healed.ok, `${healed.code} ${healed.message}`);
  t.deepEqual(healed.result, view(2, rest[0]), 'the old leader adopted the majority view; its own entry was discarded');
  t.true((await cluster.get(old).request('propose', { expected: 2, next: view(3, old) })).ok, 'and it can propose again');
});
