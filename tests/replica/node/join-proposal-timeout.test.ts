import { rmSync } from 'node:fs';
import test from 'ava';
import { RespClient } from '../../../chaos/clients/resp-client.js';
import type { StoreFault } from '../../../checkpoint/store/checkpoint-store.js';
import { WaterbearError } from '../../../libos-host/errors.js';
import { until } from '../../helpers/cluster.js';
import { inProcessTwoNodes } from '../../helpers/two-nodes.js';

// The proposals this test times out are each logged as a warning: keep the test output readable.
process.env.WATERBEAR_LOG_LEVEL ??= 'error';

/**
 * A view proposal that times out may still commit later (docs/replication.md, "Views that may
 * still commit"). While a view adding joiner b may commit, an unprotected primary releases only
 * what b holds. If b then goes away, nothing would ever settle that view, and output would stay
 * held for good: the primary's lease tick proposes the current membership again to settle it.
 */
test('an unprotected primary whose join proposals timed out and whose joiner then died settles the view and serves again', async (t) => {
  t.timeout(90_000);
  let fault: StoreFault | null = null;
  let timeoutJoins = false;
  let timedOut = 0;
  const timedOutAt: number[] = [];
  const proposals: Array<{ view: number; backups: string[] }> = [];
  const { a, b, svc, dir } = await inProcessTwoNodes({
    replication: 'ackAfter: disk, heartbeatInterval: 100ms, heartbeatTimeout: 1s',
    options: { b: { storeFaultHook: () => fault } },
    coordinator: (id, c) => id === 'b' ? c : {
      ...c,
      // The coordinator never got a's proposal that adds b in time: as far as a knows, it may commit.
      async proposeView(expected, next) {
        proposals.push({ view: next.view, backups: [...next.backups] });
        if (timeoutJoins && next.backups.includes('b')) {
          timedOut++;
          timedOutAt.push(Date.now());
          throw new WaterbearError('WB_TIMEOUT', 'test: the proposal timed out');
        }
        return c.proposeView(expected, next);
      },
    },
  });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const c = await until('service', () => RespClient.connect(svc));
  t.is(await c.call('SET', 'k', 'before'), 'OK');
  await until('protected', () => a.statusReply().protected || null);

  // b's store fails: a drops it and runs unprotected.
  fault = { errno: 'ENOSPC' };
  c.timeoutMs = 20_000;
  t.is(await c.call('SET', 'k', 'out'), 'OK');
  await until('b out of the view', () => (!a.statusReply().protected && !a.statusReply().backups.includes('b')) || null, 10_000);

  // b's store works again: it rejoins, catches up, and a proposes the view with it, which times out.
  timeoutJoins = true;
  fault = null;
  await until('a join proposal timed out', () => timedOut > 0 || null, 30_000);
  t.is(await c.call('SET', 'k', 'while-uncertain'), 'OK', 'released once the joiner holds it');
  // The coordinator keeps failing: a retries the join after 1, 2, 4… lease ticks (100 ms each), not at
  // every capture of a busy guest (it used to propose ~15 times a second). A slow machine only widens the gaps.
  const busyUntil = Date.now() + 30_000;
  for (let i = 0; timedOut < 4 && Date.now() < busyUntil; i++) t.is(await c.call('SET', 'busy', String(i)), 'OK');
  const gaps = timedOutAt.slice(1, 4).map((at, i) => at - timedOutAt[i]);
  t.true(gaps[2] >= 300 && gaps[1] >= 150, `gaps between the first four join proposals: ${gaps.join(', ')} ms`);

  // The joiner goes away: output waits for it while the view with it may commit, then the view is settled.
  await b.stop();
  const started = Date.now();
  t.is(await c.call('SET', 'k', 'after'), 'OK', 'answered once the view was settled');
  t.log(`${timedOut} join proposal(s) timed out; SET after b stopped answered in ${Date.now() - started} ms`);
  const settle = proposals.filter((p) => p.backups.length === 0).at(-1);
  t.truthy(settle, `a proposed a view without b: ${JSON.stringify(proposals)}`);
  t.false(a.statusReply().protected);
  t.is(a.statusReply().view, settle!.view);
  t.is(await c.call('GET', 'k'), 'after');
  c.close();
  await a.stop();
});
