import test from 'ava';
import { END_OF_STREAM, WOULD_BLOCK, type Handle } from '../../../libos-host/abi/host-abi.js';
import { FaultExtension } from '../../../libos-host/extensions/fault.js';
import { parseFaultRule } from '../../../libos-host/extensions/registry.js';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { FakeAbi } from './fake-abi.js';

function fault(lower: FakeAbi, ...rules: string[]): FaultExtension {
  return new FaultExtension(lower, rules.map(parseFaultRule));
}

/** Push one byte and read it: the pattern of results over `n` reads ('ok' or the errno). */
function readPattern(f: FaultExtension, lower: FakeAbi, h: Handle, n: number): string[] {
  const out: string[] = [];
  const buf = new Uint8Array(8);
  for (let i = 0; i < n; i++) {
    lower.push(h, 'x');
    const r = f.read(h, buf);
    out.push(typeof r === 'string' ? r : 'ok');
    if (typeof r === 'string') f.read(h, buf); // drain: a failed read consumes nothing
  }
  return out;
}

test('after=2,count=1 fails exactly the third read, which consumes nothing', (t) => {
  const lower = new FakeAbi();
  const f = fault(lower, 'call=read,errno=ECONNRESET,after=2,count=1');
  const h = lower.connection();
  const buf = new Uint8Array(8);
  lower.push(h, 'a'); t.is(f.read(h, buf), 1);
  lower.push(h, 'b'); t.is(f.read(h, buf), 1);
  lower.push(h, 'c'); t.is(f.read(h, buf), 'ECONNRESET');
  t.is(f.read(h, buf), 1);
  t.is(buf[0], 'c'.charCodeAt(0));
  lower.push(h, 'd'); t.is(f.read(h, buf), 1);
});

test('reads that would block are neither counted nor failed', (t) => {
  const lower = new FakeAbi();
  const f = fault(lower, 'call=read,after=1');
  const h = lower.connection();
  const buf = new Uint8Array(8);
  for (let i = 0; i < 5; i++) t.is(f.read(h, buf), WOULD_BLOCK);
  lower.push(h, 'a'); t.is(f.read(h, buf), 1);
  lower.push(h, 'b'); t.is(f.read(h, buf), 'ECONNRESET');
});

test('after=n without count fails the n+1-th and every later call', (t) => {
  const lower = new FakeAbi();
  const f = fault(lower, 'call=write,after=3,errno=EPIPE');
  const h = lower.connection();
  const results = Array.from({ length: 6 }, () => f.write(h, new Uint8Array([1])));
  t.deepEqual(results, [1, 1, 1, 'EPIPE', 'EPIPE', 'EPIPE']);
  t.is(lower.output(h).length, 3);
});

test('the same seed gives the same failure pattern, another seed a different one', (t) => {
  const run = (seed: number): string[] => {
    const lower = new FakeAbi();
    const f = fault(lower, `call=read,errno=EIO,p=0.3,seed=${seed}`);
    return readPattern(f, lower, lower.connection(), 200);
  };
  const a = run(12345);
  t.deepEqual(run(12345), a, 'seed 12345');
  t.notDeepEqual(run(54321), a);
  const failures = a.filter((r) => r === 'EIO').length;
  t.true(failures > 30 && failures < 90, `about 30% of 200 reads fail: got ${failures}`);
});

test('without seed= the PRNG is seeded once from the lower random and the seed is reported', (t) => {
  const a = fault(new FakeAbi(), 'call=read,p=0.5');
  const b = fault(new FakeAbi(), 'call=read,p=0.5');
  t.deepEqual(a.seeds(), b.seeds()); // FakeAbi.random is deterministic
  const lower = new FakeAbi();
  const seeded = fault(lower, `call=read,p=0.5,seed=${a.seeds()[0]}`);
  const l2 = new FakeAbi();
  const unseeded = fault(l2, 'call=read,p=0.5');
  t.deepEqual(readPattern(seeded, lower, lower.connection(), 50), readPattern(unseeded, l2, l2.connection(), 50));
});

test('count=k limits the number of failures', (t) => {
  const lower = new FakeAbi();
  const f = fault(lower, 'call=read,errno=EIO,p=0.5,count=3,seed=9');
  const pattern = readPattern(f, lower, lower.connection(), 100);
  t.is(pattern.filter((r) => r === 'EIO').length, 3);
});

test('saveState then restoreState on a new instance continues counters and the PRNG sequence identically', (t) => {
  const rules = ['call=read,errno=EIO,p=0.4,seed=77', 'call=write,after=10,count=2'];
  const lowerA = new FakeAbi();
  const a = fault(lowerA, ...rules);
  const hA = lowerA.connection();
  readPattern(a, lowerA, hA, 30);
  for (let i = 0; i < 8; i++) a.write(hA, new Uint8Array([1]));
  const saved = JSON.parse(JSON.stringify(a.saveState())) as unknown;

  const lowerB = new FakeAbi();
  const b = fault(lowerB, ...rules);
  b.restoreState(saved);
  const hB = lowerB.connection();
  t.deepEqual(readPattern(b, lowerB, hB, 100), readPattern(a, lowerA, hA, 100));
  const writes = (f: FaultExtension, h: Handle): unknown[] => Array.from({ length: 6 }, () => f.write(h, new Uint8Array([1])));
  t.deepEqual(writes(b, hB), [1, 1, 'EPIPE', 'EPIPE', 1, 1]);
  t.deepEqual(writes(a, hA), [1, 1, 'EPIPE', 'EPIPE', 1, 1]);
});

test('restoring state saved with other rules or a damaged state is refused with a stable code', (t) => {
  const saved = fault(new FakeAbi(), 'call=read,p=0.5,seed=1').saveState();
  const other = fault(new FakeAbi(), 'call=read,p=0.5,seed=2');
  t.true(isWaterbearError(t.throws(() => other.restoreState(saved)), 'WB_CONFIG_INVALID'));
  const same = fault(new FakeAbi(), 'call=read,p=0.5,seed=1');
  t.true(isWaterbearError(t.throws(() => same.restoreState({ v: 2, rules: [] })), 'WB_CHECKPOINT_VERSION'));
  t.true(isWaterbearError(t.throws(() => same.restoreState('junk')), 'WB_CHECKPOINT_CORRUPT'));
  t.true(isWaterbearError(t.throws(() => same.restoreState({ v: 1, rules: [{ text: 'call=read,p=0.5,seed=1' }] })), 'WB_CHECKPOINT_CORRUPT'));
});

test('on= limits a rule to streams of that kind', (t) => {
  const lower = new FakeAbi();
  const f = fault(lower, 'call=write,errno=EIO,on=stdout');
  const conn = lower.connection();
  const out = f.open('stdout:');
  t.is(f.write(conn, new Uint8Array([1])), 1);
  t.is(f.write(out, new Uint8Array([1])), 'EIO');
});

test('a failed accept hands out a connection that reports the errno once, then end of stream', (t) => {
  const lower = new FakeAbi();
  const f = fault(lower, 'call=accept,after=1,count=1');
  const l = lower.listener();
  t.is(f.accept(l), WOULD_BLOCK); // nothing pending: not counted
  lower.incoming(l); lower.incoming(l); lower.incoming(l);
  const ok = f.accept(l) as Handle;
  const reset = f.accept(l) as Handle;
  const ok2 = f.accept(l) as Handle;
  const buf = new Uint8Array(8);
  lower.push(ok, 'x');
  t.is(f.read(ok, buf), 1);
  t.like(f.poll(reset), { readable: true, hangup: true, error: 'ECONNRESET' });
  t.is(f.read(reset, buf), 'ECONNRESET');
  t.is(f.read(reset, buf), END_OF_STREAM);
  t.is(f.write(reset, buf), 'EPIPE');
  t.is(f.shutdown(reset, { read: true, write: true }), 'ENOTCONN');
  t.like(f.poll(ok2), { error: null });
});

test('a failed poll reports a pending error that the next read returns', (t) => {
  const lower = new FakeAbi();
  const f = fault(lower, 'call=poll,errno=EIO,after=1,count=1');
  const h = lower.connection();
  t.like(f.poll(h), { readable: false, error: null });
  t.like(f.poll(h), { readable: true, error: 'EIO' });
  t.like(f.poll(h), { readable: true, error: 'EIO' }); // still pending, not re-rolled
  t.is(f.read(h, new Uint8Array(4)), 'EIO');
  t.like(f.poll(h), { readable: false, error: null });
});

test('a pending injected error wakes a waiter at once', async (t) => {
  const lower = new FakeAbi();
  const f = fault(lower, 'call=poll,errno=EIO');
  const h = lower.connection();
  f.poll(h);
  await f.wait([{ handle: h, read: true, write: false }], null);
  t.pass();
});

test('shutdown, listen, random and wait fail as their rules say', async (t) => {
  const lower = new FakeAbi();
  const f = fault(lower, 'call=shutdown,errno=EIO', 'call=listen,errno=EACCES', 'call=random', 'call=wait,count=1');
  const h = lower.connection();
  t.is(f.shutdown(h, { read: false, write: true }), 'EIO');
  const err = await t.throwsAsync(f.listen('tcp.srv:127.0.0.1:0'));
  t.true(isWaterbearError(err, 'WB_LISTEN_FAILED'));
  const bytes = new Uint8Array(16).fill(7);
  f.random(bytes);
  t.deepEqual([...bytes], new Array(16).fill(0));
  // The first wait wakes spuriously with nothing ready; the second really parks.
  await f.wait([{ handle: h, read: true, write: false }], null);
  let woke = false;
  const w = f.wait([{ handle: h, read: true, write: false }], null).then(() => { woke = true; });
  await new Promise((r) => setImmediate(r));
  t.false(woke);
  lower.push(h, 'x');
  await w;
  t.true(woke);
});
