import test from 'ava';
import { TraceExtension, parseTraceOptions, DEFAULT_TRACE_DATA_BYTES } from '../../../libos-host/extensions/trace.js';
import { MemoryTraceSink } from '../../../libos-host/extensions/trace-sink.js';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { FakeAbi } from './fake-abi.js';

function setup(options: Record<string, string> = {}): { lower: FakeAbi; tr: TraceExtension; sink: MemoryTraceSink } {
  const lower = new FakeAbi();
  const sink = new MemoryTraceSink();
  return { lower, sink, tr: new TraceExtension(lower, sink, parseTraceOptions(options)) };
}

test('each ABI call becomes one JSON line with time, call, handle, small args, result and duration', (t) => {
  const { lower, tr, sink } = setup();
  const h = lower.connection();
  lower.push(h, 'hello world!');
  t.is(tr.read(h, new Uint8Array(100)), 12);
  t.is(tr.read(h, new Uint8Array(100)), -1);
  t.is(tr.read(999, new Uint8Array(4)), 'EBADF');
  t.is(tr.write(h, new Uint8Array(3)), 3);
  tr.poll(h);
  tr.close(h);
  const recs = sink.records();
  t.is(recs.length, 6);
  t.deepEqual(recs[0], { t: lower.timeNs.toString(), call: 'read', handle: h, args: { len: 100 }, result: 12, us: 0 });
  t.is(recs[1].result, 'WOULD_BLOCK');
  t.is(recs[2].result, 'EBADF');
  t.deepEqual(recs[3].args, { bytes: 3 });
  t.is(recs[4].result, 'w');
  t.deepEqual(recs[5], { t: lower.timeNs.toString(), call: 'close', handle: h, result: null, us: 0 });
  t.false(sink.lines.some((l) => l.includes('hello')), 'no payload by default');
});

test('data=1 adds the first 64 payload bytes as hex', (t) => {
  const { lower, tr, sink } = setup({ data: '1' });
  const h = lower.connection();
  lower.push(h, 'hi');
  tr.read(h, new Uint8Array(10));
  tr.write(h, new Uint8Array(200).fill(0xab));
  const [r, w] = sink.records();
  t.is(r.data, '6869');
  t.is(w.data, 'ab'.repeat(DEFAULT_TRACE_DATA_BYTES));
});

test('wait, now, listen and accept are traced with their own small arguments', async (t) => {
  const { lower, tr, sink } = setup();
  const l = await tr.listen('tcp.srv:127.0.0.1:0');
  lower.incoming(l);
  const c = tr.accept(l);
  await tr.wait([{ handle: c, read: false, write: true }], 5n);
  tr.now('realtime');
  const recs = sink.records();
  t.deepEqual(recs.map((r) => r.call), ['listen', 'accept', 'wait', 'now']);
  t.deepEqual(recs[0].args, { uri: 'tcp.srv:127.0.0.1:0' });
  t.is(recs[1].result, c);
  t.deepEqual(recs[2].args, { interests: [`${c}w`], deadline: '5' });
  t.is(recs[3].result, lower.now('realtime').toString());
});

test('calls= limits which calls are traced', (t) => {
  const { lower, tr, sink } = setup({ calls: 'read+write' });
  const h = lower.connection();
  tr.poll(h);
  tr.now('monotonic');
  tr.write(h, new Uint8Array(1));
  t.deepEqual(sink.records().map((r) => r.call), ['write']);
});

test('the duration is measured on the lower monotonic clock in microseconds', async (t) => {
  const { lower, tr, sink } = setup();
  const w = tr.wait([], lower.timeNs + 2_500_000n);
  lower.advance(2_500_000n);
  await w;
  t.is(sink.records()[0].us, 2500);
});

test('the line count continues after saveState/restoreState on a new instance', (t) => {
  const a = setup();
  a.tr.now('monotonic'); a.tr.now('monotonic');
  const b = setup();
  b.tr.restoreState(JSON.parse(JSON.stringify(a.tr.saveState())));
  b.tr.now('monotonic');
  t.is(b.tr.lineCount, 3);
  t.true(isWaterbearError(t.throws(() => b.tr.restoreState({ v: 1, lines: 'x' })), 'WB_CHECKPOINT_CORRUPT'));
});
