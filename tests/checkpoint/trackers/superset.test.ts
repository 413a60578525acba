/**
 * The instrument and uffd trackers must report a SUPERSET of the pages the shadow tracker finds
 * changed, at every collect (over-reporting is allowed, under-reporting never). Seeded random
 * workloads on real guests; a failure prints its seed (rerun with WATERBEAR_SEED=<seed>).
 */
import test, { type ExecutionContext } from 'ava';
import { RespClient } from '../../../chaos/clients/resp-client.js';
import type { DirtyTracker } from '../../../checkpoint/trackers/dirty-tracker.js';
import { InstrumentTracker } from '../../../checkpoint/trackers/instrument-tracker.js';
import { ShadowTracker } from '../../../checkpoint/trackers/shadow-tracker.js';
import { UffdTracker, uffdAvailability } from '../../../checkpoint/trackers/uffd-tracker.js';
import type { Lvm, LvmHooks } from '../../../libos-host/runtime/lvm.js';
import { LineClient, missingPages, prng, startTrackedGuest, strictlyAscending, testSeed, type TrackedGuest } from './helpers.js';

const uffd = uffdAvailability();

/** Trackers collected together at random suspensions; the shadow tracker (last) is the reference. */
class Bank {
  readonly trackers: DirtyTracker[] = [];
  collects = 0;
  checkedPages = 0;
  armedBytes = 0;
  lastBytes = 0;
  readonly failures: string[] = [];

  constructor(readonly seed: number, readonly label: string) {}

  arm(memory: WebAssembly.Memory, trackers: DirtyTracker[]): void {
    this.trackers.push(...trackers, new ShadowTracker());
    // Same order at arm and collect: the instrument tracker clears its map first, so the map
    // is back to all-zero when the shadow tracker compares.
    for (const t of this.trackers) t.arm(memory);
    this.armedBytes = this.lastBytes = memory.buffer.byteLength;
  }

  collect(memory: WebAssembly.Memory): void {
    const results = this.trackers.map((t) => t.collect(memory));
    const reference = results[results.length - 1];
    this.collects++;
    this.lastBytes = memory.buffer.byteLength;
    this.checkedPages += reference.length;
    results.forEach((pages, i) => {
      const kind = this.trackers[i].kind;
      if (!strictlyAscending(pages)) this.failures.push(`${kind}: pages not strictly ascending at collect ${this.collects}`);
      if (i === results.length - 1) return;
      const missing = missingPages(pages, reference);
      if (missing.length > 0) {
        this.failures.push(`${this.label} seed ${this.seed}: ${kind} missed ${missing.length} of ${reference.length} changed pages at collect ${this.collects} ` +
          `(first: ${missing.slice(0, 8).join(', ')}; memory ${memory.buffer.byteLength} bytes)`);
      }
    });
  }

  close(): void { for (const t of this.trackers) t.close(); }

  report(t: ExecutionContext): void {
    t.log(`${this.label} seed ${this.seed}: ${this.collects} collects, ${this.checkedPages} changed pages checked against ${this.trackers.map((x) => x.kind).join(', ')}; ` +
      `memory ${(this.armedBytes / 2 ** 20).toFixed(1)} -> ${(this.lastBytes / 2 ** 20).toFixed(1)} MiB`);
    if (this.failures.length > 0) t.fail(this.failures.slice(0, 5).join('\n'));
    t.true(this.collects >= 5, `only ${this.collects} collects`);
  }
}

/** Hooks that collect with probability `p` at each suspension (and `after` runs after a collect). */
function collectingHooks(bank: () => Bank | null, rnd: () => number, p: number, after?: (lvm: Lvm) => void): LvmHooks {
  return {
    onSuspended: (lvm) => {
      const b = bank();
      if (b === null || rnd() >= p) return;
      b.collect(lvm.memory);
      after?.(lvm);
    },
  };
}

function trackersFor(g: TrackedGuest, withInstrument: boolean): DirtyTracker[] {
  const out: DirtyTracker[] = [];
  if (withInstrument) out.push(InstrumentTracker.forImage(g.image));
  if (uffd.available) out.push(new UffdTracker());
  return out;
}

if (!uffd.available) console.log(`uffd tracker not checked here: ${uffd.reason}`);

for (const dirtyTracking of ['instrument', 'none'] as const) {
  const which = dirtyTracking === 'instrument' ? 'instrument and uffd trackers' : 'uffd tracker on a plain image';
  const skip = dirtyTracking === 'none' && !uffd.available;

  (skip ? test.skip : test.serial)(`memstress: ${which} report a superset of the shadow tracker's pages`, async (t) => {
    const seed = testSeed();
    const rnd = prng(seed);
    let bank: Bank | null = null;
    const g = await startTrackedGuest('memstress', { dirtyTracking, listen: 1, env: ['MEMSTRESS_MB=16'], hooks: collectingHooks(() => bank, rnd, 0.4) });
    bank = new Bank(seed, 'memstress');
    bank.arm(g.lvm.memory, trackersFor(g, dirtyTracking === 'instrument'));
    const running = g.run();
    let c: LineClient | null = null;
    try {
      c = await LineClient.connect(g.port());
      for (let i = 0; i < 150; i++) {
        const n = [0, 1, 2, 7, 100, 1000, 5000][Math.floor(rnd() * 7)];
        const reply = await c.request(`TOUCH ${n}`);
        t.regex(reply, /^OK \d+$/, `seed ${seed}: request ${i}`);
      }
      bank.collect(g.lvm.memory);
    } finally {
      c?.close();
      g.lvm.stop();
      await running;
      bank.close();
    }
    bank.report(t);
  });

  (skip ? test.skip : test.serial)(`kv: ${which} report a superset of the shadow tracker's pages`, async (t) => {
    const seed = testSeed();
    const rnd = prng(seed);
    let bank: Bank | null = null;
    const g = await startTrackedGuest('kv', { dirtyTracking, listen: 1, hooks: collectingHooks(() => bank, rnd, 0.3) });
    bank = new Bank(seed, 'kv');
    bank.arm(g.lvm.memory, trackersFor(g, dirtyTracking === 'instrument'));
    const running = g.run();
    const clients: RespClient[] = [];
    try {
      clients.push(...await Promise.all([0, 1, 2].map(() => RespClient.connect(g.port()))));
      const value = (n: number): string => String.fromCharCode(97 + Math.floor(rnd() * 26)).repeat(n);
      const size = (): number => [1, 16, 100, 5000, 70_000, 400_000][Math.floor(rnd() * 6)];
      for (let i = 0; i < 120; i++) {
        const batch = clients.map((c) => {
          const key = `k${Math.floor(rnd() * 40)}`;
          switch (Math.floor(rnd() * 5)) {
            case 0: return c.call('SET', key, value(size()));
            case 1: return c.call('APPEND', key, value(size()));
            case 2: return c.call('DEL', key);
            case 3: return c.call('INCR', `n${Math.floor(rnd() * 5)}`);
            default: return c.call('GET', key);
          }
        });
        await Promise.all(batch);
      }
      t.is(await clients[0].call('PING'), 'PONG');
      bank.collect(g.lvm.memory);
    } finally {
      for (const c of clients) c.close();
      g.lvm.stop();
      await running;
      bank.close();
    }
    bank.report(t);
  });
}

test.serial('allocstress with yield points, suspended at random times: instrument and uffd report a superset of the shadow tracker\'s pages', async (t) => {
  const seed = testSeed();
  const rnd = prng(seed);
  let bank: Bank | null = null;
  // Suspend again 1-20 ms after each collect.
  const again = (lvm: Lvm): void => lvm.requestSuspend(lvm.abi.now('monotonic') + BigInt(Math.floor(1_000_000 + rnd() * 19_000_000)));
  const g = await startTrackedGuest('test/allocstress', {
    dirtyTracking: 'instrument', yieldPoints: true, env: [`SEED=${seed % 1000}`], memoryLimitBytes: 1024 * 1024 * 1024,
    hooks: collectingHooks(() => bank, () => 0, 1, again),
  });
  bank = new Bank(seed, 'allocstress');
  bank.arm(g.lvm.memory, trackersFor(g, true));
  g.lvm.requestSuspend(0n);
  const exit = await g.run();
  bank.collect(g.lvm.memory);
  bank.close();
  t.deepEqual(exit, { kind: 'exit', code: 0 });
  t.regex(g.stdout(), /^ok \d+\n$/);
  bank.report(t);
});

test.serial('the superset check catches a tracker that misses writes (instrument tracker on a plain image)', async (t) => {
  const seed = testSeed();
  const rnd = prng(seed);
  let bank: Bank | null = null;
  const g = await startTrackedGuest('memstress', { dirtyTracking: 'none', listen: 1, env: ['MEMSTRESS_MB=4'], hooks: collectingHooks(() => bank, rnd, 1) });
  bank = new Bank(seed, 'broken');
  bank.arm(g.lvm.memory, [new InstrumentTracker(g.image.layout)]);
  const running = g.run();
  const c = await LineClient.connect(g.port());
  for (let i = 0; i < 10; i++) await c.request('TOUCH 50');
  c.close();
  g.lvm.stop();
  await running;
  bank.close();
  t.true(bank.failures.length > 0);
  t.regex(bank.failures[0], /instrument missed \d+ of \d+ changed pages/);
});
