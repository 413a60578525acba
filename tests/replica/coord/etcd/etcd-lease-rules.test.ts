/**
 * The etcd lease rules without etcd: the clock arithmetic (the holder is fenced before a waiter
 * resolves, for any clock rates within the bound), the holder-side keeper and the waiter loop, with
 * fake etcd round trips and a fake clock.
 */
import test from 'ava';
import { isWaterbearError, WaterbearError } from '../../../../libos-host/errors.js';
import { holderDeadlineMs, resolveLeaseTiming, type LeaseTiming, type MonotonicClock } from '../../../../replica/coord/lease.js';
import { SeededRandom } from '../../../../replica/coord/raft/raft-random.js';
import { Deadline } from '../../../../replica/coord/etcd/etcd-client.js';
import { awaitLeaseGone, EtcdLeaseKeeper, etcdGrantorTailMs, type EtcdLeaseOps } from '../../../../replica/coord/etcd/etcd-lease.js';

class FakeClock implements MonotonicClock {
  constructor(public now = 0) {}
  nowMs(): number {
    return this.now;
  }
}

/**
 * One random history in real time: the holder's last confirmed keepalive, etcd renewing and later
 * revoking the lease on its own clock, a waiter seeing the key gone and waiting `tailMs` on its clock.
 * Returns [real time the holder stops acting, real time the waiter resolves].
 */
function history(rng: SeededRandom, timing: LeaseTiming, tailMs: (t: LeaseTiming) => number, extreme: boolean): [number, number] {
  const rate = (): number => {
    const r = extreme ? (rng.nextFloat() < 0.5 ? -1 : 1) : rng.nextFloat() * 2 - 1;
    return 1 + r * timing.maxDriftRate;
  };
  const holderRate = rate();
  const etcdRate = rate();
  const waiterRate = rate();
  const delay = (): number => (extreme ? 0 : rng.nextFloat() * 300);
  const send = rng.nextFloat() * 1e6;
  const holderStops = send + (holderDeadlineMs(0, timing) - 0) / holderRate;
  const renew = send + delay();
  // etcd's TTL is the requested one or more (etcd raises TTLs below its minimum).
  const etcdTtl = timing.ttlMs + (extreme ? 0 : Math.floor(rng.nextFloat() * 3) * 1000);
  const revoke = renew + etcdTtl / etcdRate + delay();
  const seenGone = revoke + delay();
  const resolves = seenGone + tailMs(timing) / waiterRate;
  return [holderStops, resolves];
}

test('a waiter resolves only after the holder has fenced itself, for any clock rates within the bound', (t) => {
  const rng = new SeededRandom(7);
  const timings = [
    resolveLeaseTiming({ ttlMs: 2000 }),
    resolveLeaseTiming({ ttlMs: 1000, maxDriftRate: 0.05, marginMs: 0 }),
    resolveLeaseTiming({ ttlMs: 600_000, maxDriftRate: 0.1, marginMs: 0 }),
    resolveLeaseTiming({ ttlMs: 10_000, maxDriftRate: 0, marginMs: 0 }),
  ];
  for (const timing of timings) {
    for (let i = 0; i < 10_000; i++) {
      const [holderStops, resolves] = history(rng, timing, etcdGrantorTailMs, i % 2 === 0);
      if (!(holderStops < resolves || (timing.maxDriftRate === 0 && timing.marginMs === 0 && holderStops <= resolves))) {
        t.fail(`ttl ${timing.ttlMs} ρ ${timing.maxDriftRate}: holder stops at ${holderStops}, waiter resolves at ${resolves}`);
        return;
      }
    }
  }
  t.pass();
});

test('the check catches a waiter that trusts the key deletion alone (no grantor tail)', (t) => {
  const rng = new SeededRandom(11);
  const timing = resolveLeaseTiming({ ttlMs: 600_000, maxDriftRate: 0.01, marginMs: 50 });
  let violations = 0;
  for (let i = 0; i < 1_000; i++) {
    const [holderStops, resolves] = history(rng, timing, () => 0, true);
    if (resolves <= holderStops) violations++;
  }
  t.true(violations > 0, 'with a long TTL and drifting clocks, etcd may revoke before the holder stops');
  t.true(etcdGrantorTailMs(timing) >= timing.ttlMs * timing.maxDriftRate + timing.marginMs);
});

interface FakeEtcd {
  ops: EtcdLeaseOps;
  calls: string[];
  /** Leases etcd still has. */
  alive: Set<string>;
  /** When set, the next call of that name throws it. */
  failNext: Map<string, Error>;
  grantedTtlSeconds: number | null;
  viewNumber: number;
  /** Runs once after the next keepalive was answered. */
  afterKeepalive: (() => void) | null;
}

/** Each round trip takes `rttMs` on the fake clock. */
function fakeEtcd(clock: FakeClock, rttMs = 10): FakeEtcd {
  let nextId = 100;
  const f: FakeEtcd = {
    calls: [],
    alive: new Set(),
    failNext: new Map(),
    grantedTtlSeconds: null,
    viewNumber: 3,
    afterKeepalive: null,
    ops: undefined as unknown as EtcdLeaseOps,
  };
  const step = async (name: string): Promise<void> => {
    f.calls.push(name);
    await Promise.resolve();
    clock.now += rttMs;
    const err = f.failNext.get(name);
    if (err !== undefined) {
      f.failNext.delete(name);
      throw err;
    }
  };
  f.ops = {
    deadline: () => new Deadline(1000),
    grant: async (ttlSeconds) => {
      await step('grant');
      const id = String(nextId++);
      f.alive.add(id);
      return { id, ttlSeconds: f.grantedTtlSeconds ?? ttlSeconds };
    },
    keepalive: async (leaseId) => {
      await step('keepalive');
      const ttl = f.alive.has(leaseId) ? 1 : 0;
      const after = f.afterKeepalive;
      f.afterKeepalive = null;
      after?.();
      return ttl;
    },
    attachKeyAndReadView: async (leaseId) => {
      await step('attach');
      if (!f.alive.has(leaseId)) {
        throw new WaterbearError('WB_COORD_UNAVAILABLE', 'lease not found', { details: { leaseNotFound: true } });
      }
      return f.viewNumber;
    },
    report: () => undefined,
  };
  return f;
}

const TIMING = resolveLeaseTiming({ ttlMs: 1000, maxDriftRate: 0.01, marginMs: 10 });

test('the holder counts its lease from the clock reading taken before the request, and only once the key is attached', async (t) => {
  const clock = new FakeClock(1000);
  const etcd = fakeEtcd(clock);
  const keeper = new EtcdLeaseKeeper('r1', etcd.ops, clock, TIMING);
  t.true(keeper.holder.expired(), 'no lease before the first confirmation');
  const g = await keeper.renew();
  t.deepEqual(etcd.calls, ['grant', 'attach']);
  t.is(g.sentAtMs, 1000, 'read before the grant request, not when the answer came (1020)');
  t.is(g.validUntilMs, holderDeadlineMs(1000, TIMING));
  t.is(g.view, 3);
  t.is(g.ttlMs, 1000);
  t.is(keeper.holder.lastConfirmedMs, 1000);

  clock.now = 1500;
  const g2 = await keeper.renew();
  t.deepEqual(etcd.calls.slice(2), ['keepalive', 'attach'], 'an existing lease is kept alive, not re-granted');
  t.is(g2.sentAtMs, 1500);
  clock.now = holderDeadlineMs(1500, TIMING) - 1;
  t.false(keeper.holder.expired());
  clock.now = holderDeadlineMs(1500, TIMING);
  t.true(keeper.holder.expired(), 'fenced at the holder deadline without any message from etcd');
});

test('a failed renewal confirms nothing, and the lease simply runs out', async (t) => {
  const clock = new FakeClock(0);
  const etcd = fakeEtcd(clock);
  const keeper = new EtcdLeaseKeeper('r1', etcd.ops, clock, TIMING);
  await keeper.renew();
  clock.now = 400;
  etcd.failNext.set('keepalive', new WaterbearError('WB_TIMEOUT', 'no answer'));
  await t.throwsAsync(keeper.renew(), { code: 'WB_TIMEOUT' });
  t.is(keeper.holder.lastConfirmedMs, 0);
  clock.now = 500;
  etcd.failNext.set('attach', new WaterbearError('WB_COORD_UNAVAILABLE', 'gone'));
  await t.throwsAsync(keeper.renew(), { code: 'WB_COORD_UNAVAILABLE' });
  t.is(keeper.holder.lastConfirmedMs, 0, 'a keepalive acknowledged but not followed by the key check does not count');
  clock.now = holderDeadlineMs(0, TIMING);
  t.true(keeper.holder.expired());
});

test('a lease etcd revoked is replaced by a new one, from a fresh clock reading', async (t) => {
  const clock = new FakeClock(0);
  const etcd = fakeEtcd(clock);
  const keeper = new EtcdLeaseKeeper('r1', etcd.ops, clock, TIMING);
  await keeper.renew();
  const first = keeper.currentLeaseId;
  etcd.alive.clear(); // etcd expired it
  clock.now = 5000;
  const g = await keeper.renew();
  t.deepEqual(etcd.calls.slice(2), ['keepalive', 'grant', 'attach']);
  t.not(keeper.currentLeaseId, first);
  t.is(g.sentAtMs, 5010, 'the new lease counts from just before its grant, not from the failed keepalive');

  // etcd forgets the lease between the keepalive and the key check: also replaced.
  const second = keeper.currentLeaseId;
  etcd.afterKeepalive = () => etcd.alive.clear();
  clock.now = 6000;
  const g2 = await keeper.renew();
  t.deepEqual(etcd.calls.slice(5), ['keepalive', 'attach', 'grant', 'attach']);
  t.not(keeper.currentLeaseId, second);
  t.is(g2.sentAtMs, 6020);
});

test('a lease shorter than asked is refused', async (t) => {
  const clock = new FakeClock(0);
  const etcd = fakeEtcd(clock);
  etcd.grantedTtlSeconds = 0;
  const keeper = new EtcdLeaseKeeper('r1', etcd.ops, clock, TIMING);
  await t.throwsAsync(keeper.renew(), { code: 'WB_PROTOCOL' });
  t.true(keeper.holder.expired());
});

test('concurrent renewals share the one in flight: one grant, one lease', async (t) => {
  const clock = new FakeClock(0);
  const etcd = fakeEtcd(clock);
  const keeper = new EtcdLeaseKeeper('r1', etcd.ops, clock, TIMING);
  const grants = await Promise.all([keeper.renew(), keeper.renew(), keeper.renew()]);
  t.deepEqual(etcd.calls, ['grant', 'attach']);
  t.is(grants[1], grants[0]);
  t.is(grants[2], grants[0]);
  await keeper.renew();
  t.deepEqual(etcd.calls, ['grant', 'attach', 'keepalive', 'attach'], 'the next call is a new renewal');
});

test('a waiter resolves only after seeing the key gone and waiting out the grantor tail', async (t) => {
  const clock = new FakeClock(0);
  const timing = resolveLeaseTiming({ ttlMs: 1000, maxDriftRate: 0.01, marginMs: 10 });
  const answers = [true, true, false, true, false, false, false, false, false, false];
  let polls = 0;
  const gone: number[] = [];
  await awaitLeaseGone('r1', {
    leaseKeyExists: async () => {
      clock.now += 10; // each poll: 10 ms of fake time
      const exists = answers[Math.min(polls++, answers.length - 1)];
      if (!exists) gone.push(clock.now);
      return exists;
    },
    clock,
    timing,
    pollIntervalMs: 1,
    closed: new AbortController().signal,
    report: () => undefined,
  });
  const tail = etcdGrantorTailMs(timing); // ≈ 20.4 ms
  t.true(tail > 20 && tail < 21);
  // The key is back at the 4th poll, so the tail restarts at the 5th poll (t = 50).
  t.true(clock.now >= 50 + tail, `resolved at ${clock.now}`);
  t.is(polls, 8, 'gone at 50, 60, 70 (< 50 + tail), resolved at the poll at 80');
});

test('a waiter keeps polling through errors, and gives up only on its signal or on close', async (t) => {
  const clock = new FakeClock(0);
  let polls = 0;
  let onPoll = (): void => undefined;
  const deps = {
    leaseKeyExists: async (): Promise<boolean> => {
      polls++;
      onPoll();
      if (polls % 2 === 0) throw new WaterbearError('WB_COORD_UNAVAILABLE', 'down');
      return true;
    },
    clock,
    timing: TIMING,
    pollIntervalMs: 1,
    report: () => undefined,
  };
  const abort = new AbortController();
  onPoll = () => {
    if (polls === 10) abort.abort();
  };
  const err = await t.throwsAsync(awaitLeaseGone('r1', { ...deps, closed: new AbortController().signal }, abort.signal));
  t.true(isWaterbearError(err, 'WB_TIMEOUT'), String(err));
  t.is(polls, 10, 'it kept polling through the failed reads until the signal');

  polls = 0;
  const closing = new AbortController();
  onPoll = () => {
    if (polls === 5) closing.abort();
  };
  await t.throwsAsync(awaitLeaseGone('r1', { ...deps, closed: closing.signal }), { code: 'WB_COORD_UNAVAILABLE' });
  t.is(polls, 5);

  onPoll = () => undefined;
  polls = 0;
  const already = new AbortController();
  already.abort();
  await t.throwsAsync(awaitLeaseGone('r1', { ...deps, closed: new AbortController().signal }, already.signal), { code: 'WB_TIMEOUT' });
  t.is(polls, 0);
});
