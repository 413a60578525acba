/** Views on a real etcd: first install, compare-and-set between concurrent proposers, linearizable reads, watches. */
import test from 'ava';
import { Etcd3 } from 'etcd3';
import { isWaterbearError, type WaterbearError } from '../../../../libos-host/errors.js';
import type { View } from '../../../../replica/coord/coordinator.js';
import { freePort } from '../../../../bench/support/servers.js';
import { startEtcd, type EtcdServer } from '../../../helpers/etcd-server.js';
import { Coordinators, ETCD_SERVER_OPTIONS, etcdTest, eventually, HAVE_ETCD, uniqueCluster } from './etcd-fixture.js';

let server: EtcdServer | null = null;

test.before(async () => {
  if (HAVE_ETCD) server = await startEtcd(ETCD_SERVER_OPTIONS);
});
test.after.always(async () => {
  await server?.stop();
});

function setup(name: string): Coordinators {
  if (server === null) throw new Error('etcd did not start');
  return new Coordinators(server, uniqueCluster(name));
}

const view = (n: number, primary: string, backups: string[] = []): View => ({ view: n, primary, backups });

etcdTest('the first view is installed only when there is none yet', async (t) => {
  const cs = setup('first-view');
  try {
    const a = cs.client();
    const b = cs.client();
    t.is(await a.readView(), null);
    t.deepEqual(await a.proposeView(0, view(1, 'r1', ['r2'])), view(1, 'r1', ['r2']));
    t.deepEqual(await b.readView(), view(1, 'r1', ['r2']));
    const err = await t.throwsAsync<WaterbearError>(b.proposeView(0, view(1, 'r2', ['r1'])));
    t.is(err?.code, 'WB_VIEW_CONFLICT');
    t.deepEqual(err?.details?.current, view(1, 'r1', ['r2']));
    // Proposing exactly the installed view again (e.g. a retry after an unknown outcome) succeeds.
    t.deepEqual(await b.proposeView(0, view(1, 'r1', ['r2'])), view(1, 'r1', ['r2']));
    t.deepEqual(await b.readView(), view(1, 'r1', ['r2']));
  } finally {
    await cs.closeAll();
  }
});

etcdTest('concurrent proposers of the same view number: exactly one wins each round', async (t) => {
  const cs = setup('cas-race');
  try {
    const proposers = [cs.client(), cs.client(), cs.client()];
    const reader = cs.client();
    for (let round = 0; round < 30; round++) {
      const contenders = round % 3 === 0 ? proposers : proposers.slice(0, 2);
      const expected = round;
      const results = await Promise.allSettled(
        contenders.map((c, i) => c.proposeView(expected, view(expected + 1, `p${i}`, [`b${round}`]))),
      );
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      t.is(won.length, 1, `round ${round}: ${JSON.stringify(results.map((r) => r.status))}`);
      for (const r of results) {
        if (r.status === 'rejected') {
          t.true(isWaterbearError(r.reason, 'WB_VIEW_CONFLICT'), String(r.reason));
          t.deepEqual((r.reason as WaterbearError).details?.current, won[0]);
        }
      }
      t.deepEqual(await reader.readView(), won[0]);
    }
  } finally {
    await cs.closeAll();
  }
});

etcdTest('proposals that do not follow the current view conflict and report it', async (t) => {
  const cs = setup('stale-proposal');
  try {
    const a = cs.client();
    const b = cs.client();
    await a.proposeView(0, view(1, 'r1'));
    await a.proposeView(1, view(2, 'r1', ['r2']));
    await a.proposeView(2, view(3, 'r2', ['r1']));
    for (const [expected, next] of [[1, view(2, 'r9')], [4, view(5, 'r9')], [0, view(1, 'r9')]] as const) {
      const err = await t.throwsAsync<WaterbearError>(b.proposeView(expected, next));
      t.is(err?.code, 'WB_VIEW_CONFLICT');
      t.deepEqual(err?.details?.current, view(3, 'r2', ['r1']));
    }
  } finally {
    await cs.closeAll();
  }
});

etcdTest('readView right after proposeView sees it, from any client; alternating proposers follow each other', async (t) => {
  const cs = setup('linearizable');
  try {
    const a = cs.client();
    const b = cs.client();
    for (let n = 1; n <= 40; n++) {
      const [proposer, reader] = n % 2 === 0 ? [a, b] : [b, a];
      await proposer.proposeView(n - 1, view(n, n % 2 === 0 ? 'ra' : 'rb'));
      t.is((await reader.readView())?.view, n);
    }
  } finally {
    await cs.closeAll();
  }
});

etcdTest('a watcher gets the current view first, then every later view in order', async (t) => {
  const cs = setup('watch-order');
  try {
    const proposer = cs.client();
    const early = cs.client();
    const late = cs.client();
    const earlySeen: number[] = [];
    const unsubscribeEarly = early.watchViews((v) => earlySeen.push(v.view)); // before any view exists
    await proposer.proposeView(0, view(1, 'r1'));
    await proposer.proposeView(1, view(2, 'r1', ['r2']));
    await proposer.proposeView(2, view(3, 'r2', ['r1']));
    const lateSeen: View[] = [];
    const unsubscribeLate = late.watchViews((v) => lateSeen.push(v));
    t.true(await eventually(() => lateSeen.length >= 1, 5_000));
    t.deepEqual(lateSeen[0], view(3, 'r2', ['r1']), 'the current view first');
    const last = 60;
    for (let n = 4; n <= last; n++) await proposer.proposeView(n - 1, view(n, n % 2 === 0 ? 'r1' : 'r2'));
    t.true(await eventually(() => earlySeen.at(-1) === last && lateSeen.at(-1)?.view === last, 5_000));
    t.deepEqual(earlySeen, Array.from({ length: last }, (_, i) => i + 1));
    t.deepEqual(lateSeen.map((v) => v.view), Array.from({ length: last - 2 }, (_, i) => i + 3));
    unsubscribeEarly();
    await proposer.proposeView(last, view(last + 1, 'r1'));
    t.true(await eventually(() => lateSeen.at(-1)?.view === last + 1, 5_000));
    t.is(earlySeen.at(-1), last, 'nothing after unsubscribing');
    unsubscribeLate();
  } finally {
    await cs.closeAll();
  }
});

etcdTest('clusters sharing one etcd do not see each other', async (t) => {
  const x = setup('cluster-x');
  const y = setup('cluster-y');
  try {
    await x.client().proposeView(0, view(1, 'x1'));
    t.is(await y.client().readView(), null);
    await y.client().proposeView(0, view(1, 'y1'));
    t.is((await x.client().readView())?.primary, 'x1');
  } finally {
    await x.closeAll();
    await y.closeAll();
  }
});

etcdTest('a malformed stored view is WB_PROTOCOL, not a crash', async (t) => {
  const cs = setup('malformed');
  const raw = new Etcd3({ hosts: [server?.endpoint ?? ''] });
  try {
    const c = cs.client();
    await raw.put(c.keys.view.toString()).value('{"view": "one"}');
    await t.throwsAsync(c.readView(), { code: 'WB_PROTOCOL' });
  } finally {
    raw.close();
    await cs.closeAll();
  }
});

etcdTest('with one of two endpoints dead, every operation still succeeds through the other', async (t) => {
  const cs = setup('dead-endpoint');
  try {
    const dead = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    const c = cs.client({ endpoints: [dead, server?.endpoint ?? ''] });
    const seen: number[] = [];
    const unsubscribe = c.watchViews((x) => seen.push(x.view));
    for (let n = 1; n <= 20; n++) {
      await c.proposeView(n - 1, view(n, 'r1'));
      t.is((await c.readView())?.view, n);
      await c.keepAlive('r1');
    }
    t.true(await eventually(() => seen.at(-1) === 20, 10_000));
    t.deepEqual(seen, seen.slice().sort((a, b) => a - b));
    unsubscribe();
  } finally {
    await cs.closeAll();
  }
});
