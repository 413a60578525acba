/**
 * etcd killed with SIGKILL in the middle of operations: every call settles within its timeout with
 * WB_COORD_UNAVAILABLE or WB_TIMEOUT (no hang, no crash), holders fence themselves on their own clock,
 * and after a restart everything works again, watches included (no view skipped).
 */
import { isWaterbearError } from '../../../../libos-host/errors.js';
import type { View } from '../../../../replica/coord/coordinator.js';
import { startEtcd } from '../../../helpers/etcd-server.js';
import { Coordinators, delay, ETCD_SERVER_OPTIONS, etcdTest, eventually, isUnavailable, uniqueCluster } from './etcd-fixture.js';

const REQUEST_TIMEOUT_MS = 500;
/** Scheduling slack on top of the request timeout before a call counts as hung. */
const SLACK_MS = 1_500;

const view = (n: number, primary: string): View => ({ view: n, primary, backups: [] });

/** Runs `op` and returns how long it took to settle and how. */
async function timed(op: () => Promise<unknown>): Promise<{ ms: number; ok: boolean; error: unknown }> {
  const start = performance.now();
  try {
    await op();
    return { ms: performance.now() - start, ok: true, error: null };
  } catch (error) {
    return { ms: performance.now() - start, ok: false, error };
  }
}

etcdTest('kill -9 etcd mid-operation: calls fail fast with WB_COORD_UNAVAILABLE or WB_TIMEOUT, and work again after a restart', async (t) => {
  const server = await startEtcd(ETCD_SERVER_OPTIONS);
  const cs = new Coordinators(server, uniqueCluster('crash'), { requestTimeoutMs: REQUEST_TIMEOUT_MS });
  try {
    const a = cs.client();
    const b = cs.client();
    const watcher = cs.client();
    const holder = cs.client();
    await a.proposeView(0, view(1, 'r1'));
    const seen: number[] = [];
    const unsubscribe = watcher.watchViews((v) => seen.push(v.view));
    await holder.keepAlive('r1');
    t.true(await eventually(() => seen.length === 1, 5_000));

    // A burst of operations, with etcd killed while they run.
    let proposed = 1;
    const proposals = (async () => {
      const outcomes: Array<Awaited<ReturnType<typeof timed>>> = [];
      for (let i = 0; i < 200; i++) {
        const r = await timed(() => a.proposeView(proposed, view(proposed + 1, 'r1')));
        outcomes.push(r);
        if (!r.ok) break;
        proposed++;
      }
      return outcomes;
    })();
    const others = Array.from({ length: 30 }, (_, i) =>
      timed(() => (i % 3 === 0 ? b.readView() : i % 3 === 1 ? holder.keepAlive('r1') : b.keepAlive(`x${i}`))),
    );
    await delay(15);
    await server.kill9();
    const settled = [...(await proposals), ...(await Promise.all(others))];
    for (const r of settled) {
      t.true(r.ms <= REQUEST_TIMEOUT_MS + SLACK_MS, `settled after ${r.ms} ms`);
      if (!r.ok) t.true(isUnavailable(r.error), String(r.error));
    }
    t.true(settled.some((r) => !r.ok), 'etcd died during the burst');
    const codes = settled.map((r) => (r.ok ? 'ok' : (r.error as { code?: string }).code ?? 'other'));
    t.log(`burst: ${proposed - 1} proposals committed; outcomes ${JSON.stringify(Object.fromEntries(codes.map((c) => [c, codes.filter((x) => x === c).length])))}; slowest ${Math.max(...settled.map((r) => r.ms)).toFixed(0)} ms`);

    // While etcd is down: every call fails within its timeout, with the documented codes.
    for (const op of [() => a.readView(), () => b.proposeView(proposed, view(proposed + 1, 'r2')), () => holder.keepAlive('r1')]) {
      const r = await timed(op);
      t.false(r.ok);
      t.true(isUnavailable(r.error), String(r.error));
      t.true(r.ms <= REQUEST_TIMEOUT_MS + SLACK_MS, `took ${r.ms} ms`);
    }
    // The holder fences itself on its own clock, without hearing from etcd.
    t.true(await eventually(() => holder.leaseExpired('r1'), 2_000));
    // Nobody can prove the lease expired while etcd is down: the wait gives up on its signal.
    const wait = await timed(() => b.awaitLeaseExpiry('r1', AbortSignal.timeout(300)));
    t.true(isWaterbearError(wait.error, 'WB_TIMEOUT'), String(wait.error));

    // Restart: the same clients work again.
    await server.restart();
    const restarted = performance.now();
    let back = false;
    while (!back && performance.now() - restarted < 10_000) {
      back = await a.readView().then((v) => v !== null, () => false);
      if (!back) await delay(50);
    }
    t.true(back, 'readView works again after the restart');
    t.log(`reads work again ${(performance.now() - restarted).toFixed(0)} ms after etcd is healthy`);
    const installed = (await b.readView())?.view ?? 0;
    t.true(installed >= proposed, 'every acknowledged proposal survived');
    for (let n = installed + 1; n <= installed + 5; n++) await b.proposeView(n - 1, view(n, 'r2'));
    const last = installed + 5;
    const g = await holder.keepAlive('r1');
    t.is(g.view, last);
    t.false(holder.leaseExpired('r1'));

    // The watch came back by itself and skipped nothing.
    t.true(await eventually(() => seen.at(-1) === last, 10_000), `watcher saw ${JSON.stringify(seen.slice(-5))}`);
    t.deepEqual(seen, Array.from({ length: last }, (_, i) => i + 1));
    unsubscribe();
  } finally {
    await cs.closeAll();
    await server.stop();
  }
});
