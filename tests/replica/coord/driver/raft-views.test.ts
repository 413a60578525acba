/**
 * Real members over gRPC on loopback: compare-and-set on views, linearizable reads from any member,
 * ordered watches.
 */
import test from 'ava';
import { MemberCluster, view } from './helpers/member-cluster.js';

test.serial('two concurrent proposals of the same view number: exactly one wins, the other gets WB_VIEW_CONFLICT with the winner', async (t) => {
  const cluster = await MemberCluster.start(t);
  const ids = ['a', 'b', 'c'];
  let current = 0;
  for (let round = 0; round < 10; round++) {
    const [p, q] = [ids[round % 3], ids[(round + 1) % 3]];
    const [rp, rq] = await Promise.all([
      cluster.get(p).request('propose', { expected: current, next: view(current + 1, p) }),
      cluster.get(q).request('propose', { expected: current, next: view(current + 1, q) }),
    ]);
    const winners = [rp, rq].filter((r) => r.ok);
    t.is(winners.length, 1, `round ${round}: ${JSON.stringify([rp.code, rq.code])}`);
    const loser = rp.ok ? rq : rp;
    t.is(loser.code, 'WB_VIEW_CONFLICT');
    t.deepEqual((loser.details as { current: unknown }).current, winners[0].result);
    current++;
    for (const id of ids) t.deepEqual(await cluster.get(id).call('read'), winners[0].result, `${id} reads the winner`);
  }
  const stale = await cluster.get('a').request('propose', { expected: 3, next: view(4, 'a') });
  t.is(stale.code, 'WB_VIEW_CONFLICT', 'a proposal on an old view number conflicts');
});

test.serial('watchViews delivers every committed view in increasing order, starting with the current one', async (t) => {
  const cluster = await MemberCluster.start(t);
  t.true((await cluster.get('a').request('propose', { expected: 0, next: view(1, 'a') })).ok);
  const watcher = cluster.get('c');
  await watcher.call('read');
  await watcher.call('watch');
  const first = await watcher.waitEvent((e) => e.event === 'view', 5_000);
  t.is((first.view as { view: number }).view, 1);
  for (let v = 2; v <= 30; v++) {
    const by = v % 2 === 0 ? 'a' : 'b';
    t.true((await cluster.get(by).request('propose', { expected: v - 1, next: view(v, by) })).ok);
  }
  await watcher.waitEvent((e) => e.event === 'view' && (e.view as { view: number }).view === 30, 5_000);
  const seen = watcher.events.filter((e) => e.event === 'view').map((e) => (e.view as { view: number }).view);
  t.deepEqual(seen, Array.from({ length: 30 }, (_, i) => i + 1));
});
