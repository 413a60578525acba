import test from 'ava';
import { WOULD_BLOCK } from '../../../libos-host/abi/host-abi.js';
import { FaultExtension } from '../../../libos-host/extensions/fault.js';
import { parseFaultRule } from '../../../libos-host/extensions/registry.js';
import { FakeAbi, settle } from './fake-abi.js';

const MS = 1_000_000n;

function setup(...rules: string[]): { lower: FakeAbi; f: FaultExtension; h: number } {
  const lower = new FakeAbi();
  return { lower, f: new FaultExtension(lower, rules.map(parseFaultRule)), h: lower.connection() };
}

test('read latency withholds data from read and poll until the latency has elapsed', (t) => {
  const { lower, f, h } = setup('call=read,latency=5ms');
  const buf = new Uint8Array(8);
  lower.push(h, 'x');
  t.like(f.poll(h), { readable: false, hangup: false });
  t.is(f.read(h, buf), WOULD_BLOCK);
  lower.advance(4n * MS);
  t.like(f.poll(h), { readable: false });
  t.is(f.read(h, buf), WOULD_BLOCK);
  lower.advance(1n * MS);
  t.like(f.poll(h), { readable: true });
  t.is(f.read(h, buf), 1);
});

test('a waiter on withheld data is woken when the latency expires, not when the data arrives', async (t) => {
  const { lower, f, h } = setup('call=read,latency=5ms');
  let woke = false;
  lower.push(h, 'x');
  const w = f.wait([{ handle: h, read: true, write: false }], null).then(() => { woke = true; });
  await settle();
  t.false(woke, 'withheld data does not wake the waiter');
  lower.advance(3n * MS);
  await settle();
  t.false(woke);
  lower.advance(2n * MS);
  await w;
  t.is(f.read(h, new Uint8Array(8)), 1);
});

test('data arriving during a wait starts its latency then, and the caller deadline still applies', async (t) => {
  const { lower, f, h } = setup('call=read,latency=5ms');
  const start = lower.timeNs;
  const w = f.wait([{ handle: h, read: true, write: false }], start + 2n * MS);
  lower.advance(1n * MS);
  lower.push(h, 'x'); // wakes the lower wait: one spurious wake-up is allowed
  await w;
  t.like(f.poll(h), { readable: false });
  // The deadline (2 ms) comes before the release (6 ms): the wait ends at the deadline.
  let woke = false;
  const w2 = f.wait([{ handle: h, read: true, write: false }], start + 2n * MS).then(() => { woke = true; });
  lower.advance(1n * MS);
  await w2;
  t.true(woke);
  t.is(lower.timeNs - start, 2n * MS);
  t.is(f.read(h, new Uint8Array(8)), WOULD_BLOCK);
  lower.advance(4n * MS);
  t.is(f.read(h, new Uint8Array(8)), 1);
});

test('data left after a read keeps its time, a drained stream starts a new delay', (t) => {
  const { lower, f, h } = setup('call=read,latency=5ms');
  const one = new Uint8Array(1);
  lower.push(h, 'abc');
  f.poll(h);
  lower.advance(5n * MS);
  t.is(f.read(h, one), 1);
  t.is(f.read(h, one), 1);
  t.is(f.read(h, one), 1);
  lower.push(h, 'd');
  t.is(f.read(h, one), WOULD_BLOCK);
  lower.advance(5n * MS);
  t.is(f.read(h, one), 1);
});

test('a write interest on a withheld stream still wakes the waiter', async (t) => {
  const { lower, f, h } = setup('call=read,latency=5ms');
  lower.push(h, 'x');
  await f.wait([{ handle: h, read: true, write: true }], null); // writable now
  t.pass();
});

test('on= limits read latency to streams of that kind', (t) => {
  const { lower, f, h } = setup('call=read,latency=5ms,on=stdin');
  lower.push(h, 'x');
  t.is(f.read(h, new Uint8Array(4)), 1);
});

test('wait latency delays every wake-up', async (t) => {
  const { lower, f, h } = setup('call=wait,latency=3ms');
  lower.push(h, 'x');
  let woke = false;
  const w = f.wait([{ handle: h, read: true, write: false }], null).then(() => { woke = true; });
  await settle();
  t.false(woke, 'ready at once, but the wake-up is delayed');
  lower.advance(2n * MS);
  await settle();
  t.false(woke);
  lower.advance(1n * MS);
  await w;
  t.true(woke);
});

test('an aborted wait is not delayed', async (t) => {
  const { f, h } = setup('call=wait,latency=3ms');
  const ac = new AbortController();
  const w = f.wait([{ handle: h, read: true, write: false }], null, ac.signal);
  ac.abort();
  await w;
  t.pass();
});
