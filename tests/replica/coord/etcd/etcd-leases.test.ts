/** Liveness leases on a real etcd: holder-side fencing, awaitLeaseExpiry on another client, lease loss and renewal. */
import test from 'ava';
import { Etcd3 } from 'etcd3';
import { isWaterbearError } from '../../../../libos-host/errors.js';
import { etcdGrantorTailMs } from '../../../../replica/coord/etcd/etcd-lease.js';
import { startEtcd, type EtcdServer } from '../../../helpers/etcd-server.js';
import {
  collectEvents,
  Coordinators,
  delay,
  ETCD_SERVER_OPTIONS,
  etcdTest,
  HAVE_ETCD,
  TEST_TTL_MS,
  uniqueCluster,
} from './etcd-fixture.js';

let server: EtcdServer | null = null;
let raw: Etcd3 | null = null;

test.before(async () => {
  if (!HAVE_ETCD) return;
  server = await startEtcd(ETCD_SERVER_OPTIONS);
  raw = new Etcd3({ hosts: [server.endpoint] });
});
test.after.always(async () => {
  raw?.close();
  await server?.stop();
});

function setup(name: string): Coordinators {
  if (server === null) throw new Error('etcd did not start');
  return new Coordinators(server, uniqueCluster(name));
}

/** Keeps `replicaId`'s lease alive every `everyMs` until the returned stop() is called. */
function keepAliveLoop(c: { keepAlive(id: string): Promise<unknown> }, replicaId: string, everyMs = 250): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    while (running) {
      await c.keepAlive(replicaId).catch(() => undefined);
      await delay(everyMs);
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

etcdTest('keepalives then silence: the holder fences itself within the TTL, and another client sees the lease expire after that', async (t) => {
  const cs = setup('expiry');
  try {
    const holder = cs.client();
    const waiter = cs.client();
    for (let i = 0; i < 6; i++) {
      await holder.keepAlive('r1');
      t.false(holder.leaseExpired('r1'));
      await delay(200);
    }
    const last = await holder.keepAlive('r1'); // the last keepalive: the holder now "dies" (sends nothing more)
    t.is(holder.lastConfirmedMs('r1'), last.sentAtMs);
    let resolvedAt: number | null = null;
    let holderFencedWhenResolved: boolean | null = null;
    const waiting = waiter.awaitLeaseExpiry('r1').then(() => {
      resolvedAt = performance.now();
      holderFencedWhenResolved = holder.leaseExpired('r1');
    });

    t.false(holder.leaseExpired('r1'), 'valid right after the acknowledged keepalive');
    t.true(last.validUntilMs - last.sentAtMs < TEST_TTL_MS);
    // No message from etcd is needed: at sentAt + TTL the holder's own clock says its lease is over.
    await delay(Math.max(0, last.sentAtMs + TEST_TTL_MS - performance.now()));
    t.true(holder.leaseExpired('r1'), 'fenced within the TTL of its last acknowledged keepalive');

    const outcome = await Promise.race([waiting.then(() => 'resolved'), delay(TEST_TTL_MS + 5_000).then(() => 'hung')]);
    t.is(outcome, 'resolved');
    t.true(holderFencedWhenResolved, 'the holder had fenced itself before the waiter resolved');
    const after = (resolvedAt ?? 0) - last.sentAtMs;
    t.true(after >= TEST_TTL_MS + etcdGrantorTailMs(holder.options.lease) * 0.99 - 1, `waiter resolved ${after} ms after the last keepalive`);
    t.log(`holder fenced ${(last.validUntilMs - last.sentAtMs).toFixed(0)} ms, waiter resolved ${after.toFixed(0)} ms after the last keepalive`);
  } finally {
    await cs.closeAll();
  }
});

etcdTest('awaitLeaseExpiry does not resolve while the holder keeps its lease alive', async (t) => {
  const cs = setup('kept-alive');
  try {
    // A 2 s TTL: a loaded machine that stalls one 250 ms keepalive loop for a second does not lose the lease.
    const ttlMs = 2 * TEST_TTL_MS;
    const holder = cs.client({ lease: { ttlMs } });
    const waiter = cs.client({ lease: { ttlMs } });
    await holder.keepAlive('r1');
    await holder.keepAlive('r2');
    const stop1 = keepAliveLoop(holder, 'r1');
    const stop2 = keepAliveLoop(holder, 'r2');
    const start = performance.now();
    const err = await t.throwsAsync(waiter.awaitLeaseExpiry('r1', AbortSignal.timeout(ttlMs + 1_000)));
    t.true(isWaterbearError(err, 'WB_TIMEOUT'), String(err));
    t.true(performance.now() - start >= ttlMs + 900);
    t.false(holder.leaseExpired('r1'));
    // Leases are per replica: r2 stops, r1 goes on.
    await stop2();
    await waiter.awaitLeaseExpiry('r2', AbortSignal.timeout(ttlMs + 5_000));
    t.true(holder.leaseExpired('r2'));
    t.false(holder.leaseExpired('r1'));
    await stop1();
  } finally {
    await cs.closeAll();
  }
});

etcdTest('a grant carries the current view; keepalives reuse one etcd lease attached to the lease key', async (t) => {
  const cs = setup('grant');
  try {
    const c = cs.client();
    const g0 = await c.keepAlive('r1');
    t.is(g0.view, 0, 'no view yet');
    await c.proposeView(0, { view: 1, primary: 'r1', backups: ['r2'] });
    await c.proposeView(1, { view: 2, primary: 'r1', backups: [] });
    const g1 = await c.keepAlive('r1');
    t.is(g1.view, 2);
    t.true(g1.sentAtMs > g0.sentAtMs);
    t.is(c.lastConfirmedMs('r1'), g1.sentAtMs);
    const kv = (await raw?.get(c.keys.lease('r1').toString()).exec())?.kvs[0];
    t.truthy(kv);
    const stored = JSON.parse(kv?.value.toString() ?? '{}') as { replica: string; lease: string };
    t.is(stored.replica, 'r1');
    t.is(kv?.lease, stored.lease, 'the key is attached to the lease it names');
    await c.keepAlive('r1');
    t.is((await raw?.get(c.keys.lease('r1').toString()).exec())?.kvs[0]?.lease, stored.lease, 'same etcd lease');
  } finally {
    await cs.closeAll();
  }
});

etcdTest('a holder whose etcd lease expired gets a new one on its next keepalive', async (t) => {
  const cs = setup('regrant');
  const diag = collectEvents();
  try {
    const holder = cs.client();
    const waiter = cs.client();
    await holder.keepAlive('r1');
    await waiter.awaitLeaseExpiry('r1', AbortSignal.timeout(TEST_TTL_MS + 5_000));
    t.true(holder.leaseExpired('r1'));
    const g = await holder.keepAlive('r1');
    t.false(holder.leaseExpired('r1'));
    t.is(holder.lastConfirmedMs('r1'), g.sentAtMs);
    const mine = diag.events.filter((e) => e.cluster === cs.cluster);
    const granted = mine.filter((e) => e.event === 'lease-granted').map((e) => e.leaseId);
    t.is(granted.length, 2);
    t.not(granted[0], granted[1]);
    t.true(mine.some((e) => e.event === 'lease-lost' && e.leaseId === granted[0]));
  } finally {
    diag.stop();
    await cs.closeAll();
  }
});

etcdTest('a lease key deleted by hand is attached again by the next keepalive', async (t) => {
  const cs = setup('reattach');
  try {
    const c = cs.client();
    await c.keepAlive('r1');
    const key = c.keys.lease('r1').toString();
    const before = (await raw?.get(key).exec())?.kvs[0]?.lease;
    await raw?.delete().key(key);
    t.is(await raw?.get(key).string(), null);
    await c.keepAlive('r1');
    t.is((await raw?.get(key).exec())?.kvs[0]?.lease, before);
  } finally {
    await cs.closeAll();
  }
});

etcdTest('awaitLeaseExpiry for a replica that holds no lease resolves after the grantor tail only', async (t) => {
  const cs = setup('no-lease');
  try {
    const c = cs.client();
    const start = performance.now();
    await c.awaitLeaseExpiry('nobody', AbortSignal.timeout(5_000));
    const took = performance.now() - start;
    t.true(took >= etcdGrantorTailMs(c.options.lease) - 1);
    t.true(took < 2_000, `${took} ms`);
  } finally {
    await cs.closeAll();
  }
});
