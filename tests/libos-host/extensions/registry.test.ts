import test from 'ava';
import { ForwardingAbi } from '../../../libos-host/abi/forwarding-abi.js';
import type { Extension, HostAbi } from '../../../libos-host/abi/host-abi.js';
import { FaultExtension } from '../../../libos-host/extensions/fault.js';
import { MetricsExtension } from '../../../libos-host/extensions/metrics.js';
import {
  composeExtensions, faultSpec, parseExtensionSpec, registerExtension, registeredExtensions,
} from '../../../libos-host/extensions/registry.js';
import { restoreStackState, saveStackState } from '../../../libos-host/extensions/stack-state.js';
import { TraceExtension } from '../../../libos-host/extensions/trace.js';
import { MemoryTraceSink } from '../../../libos-host/extensions/trace-sink.js';
import { isWaterbearError, type WaterbearError } from '../../../libos-host/errors.js';
import { FakeAbi } from './fake-abi.js';

function code(fn: () => unknown): string | undefined {
  try { fn(); } catch (err) { return isWaterbearError(err) ? err.code : `not a WaterbearError: ${String(err)}`; }
  return undefined;
}

test('specs parse into a name and options, values may contain = and /', (t) => {
  t.deepEqual(parseExtensionSpec('trace'), { name: 'trace', options: {} });
  t.deepEqual(parseExtensionSpec('trace:file=/tmp/a=b.jsonl,data=1'), { name: 'trace', options: { file: '/tmp/a=b.jsonl', data: '1' } });
  t.deepEqual(parseExtensionSpec('metrics'), { name: 'metrics', options: {} });
  t.deepEqual(parseExtensionSpec('fault:call=read,errno=ECONNRESET,p=0.1'), { name: 'fault', options: { call: 'read', errno: 'ECONNRESET', p: '0.1' } });
  t.deepEqual(parseExtensionSpec('fault:call=write,after=100,errno=EPIPE').options, { call: 'write', after: '100', errno: 'EPIPE' });
  t.deepEqual(parseExtensionSpec('fault:call=read,latency=5ms').options, { call: 'read', latency: '5ms' });
  t.deepEqual(faultSpec('call=read,after=2'), { name: 'fault', options: { call: 'read', after: '2' } });
});

test('malformed or unknown specs are rejected with WB_CONFIG_INVALID', (t) => {
  for (const bad of ['', ':x=1', 'tracer', 'trace:data', 'trace:data=2', 'trace:File=x', 'trace:data=1,data=0', 'trace:calls=reed',
    'trace:colour=red', 'metrics:x=1', 'fault:call=reed', 'fault:', 'trace:file=']) {
    t.is(code(() => parseExtensionSpec(bad)), 'WB_CONFIG_INVALID', bad);
  }
});

test('an unknown call in a fault spec is named with the list of calls', (t) => {
  const err = t.throws(() => parseExtensionSpec('fault:call=reed')) as WaterbearError;
  t.is(err.code, 'WB_CONFIG_INVALID');
  t.regex(err.message, /^--fault: unknown call 'reed'; calls are: accept, listen, /);
});

test('the first spec sits on the platform and the last is what the library OS calls', (t) => {
  const base = new FakeAbi();
  const sink = new MemoryTraceSink();
  const stack = composeExtensions(base, [parseExtensionSpec('fault:call=read,errno=EIO'), parseExtensionSpec('trace'), parseExtensionSpec('metrics')], { traceSink: sink });
  t.is(stack.extensions.length, 3);
  t.true(stack.extensions[0] instanceof FaultExtension);
  t.true(stack.extensions[1] instanceof TraceExtension);
  t.true(stack.extensions[2] instanceof MetricsExtension);
  t.is(stack.abi, stack.extensions[2]);
  // The trace sits above the fault, so it records the injected error.
  const h = base.connection();
  base.push(h, 'x');
  t.is(stack.abi.read(h, new Uint8Array(4)), 'EIO');
  t.is(sink.records().find((r) => r.call === 'read')?.result, 'EIO');
});

test('an empty stack is the base ABI itself', (t) => {
  const base = new FakeAbi();
  const stack = composeExtensions(base, []);
  t.is(stack.abi, base);
  t.deepEqual(stack.extensions, []);
});

test('trace without a sink or a file opener is a configuration error', (t) => {
  t.is(code(() => composeExtensions(new FakeAbi(), [parseExtensionSpec('trace')])), 'WB_CONFIG_INVALID');
  t.is(code(() => composeExtensions(new FakeAbi(), [parseExtensionSpec('trace:file=/tmp/x.jsonl')])), 'WB_CONFIG_INVALID');
});

test('trace files are opened through the injected opener and closed by dispose', async (t) => {
  const opened: Array<{ path: string; sink: MemoryTraceSink }> = [];
  const stack = composeExtensions(new FakeAbi(), [parseExtensionSpec('trace:file=/x/t.jsonl')], {
    openTraceFile: (path) => { const sink = new MemoryTraceSink(); opened.push({ path, sink }); return sink; },
  });
  stack.abi.now('monotonic');
  t.is(opened[0].path, '/x/t.jsonl');
  t.is(opened[0].sink.lines.length, 1);
  await stack.dispose();
  t.true(opened[0].sink.closed);
});

class TagExtension extends ForwardingAbi implements Extension {
  readonly name = 'tag-test';
  constructor(lower: HostAbi, readonly tag: string, readonly depValue: unknown) { super(lower); }
  saveState(): unknown { return { tag: this.tag }; }
  restoreState(): void {}
}

test('registered extensions compose by name and receive their options and deps', (t) => {
  registerExtension('tag-test', (lower, o, deps) => new TagExtension(lower, o.tag ?? '', deps.tagDep), (o) => {
    if (o.tag === undefined) throw new Error('tag required');
  });
  t.true(registeredExtensions().includes('tag-test'));
  t.is(code(() => registerExtension('tag-test', (lower) => new TagExtension(lower, '', null))), 'WB_CONFIG_INVALID');
  t.is(code(() => registerExtension('Bad Name', (lower) => new TagExtension(lower, '', null))), 'WB_CONFIG_INVALID');
  const stack = composeExtensions(new FakeAbi(), [parseExtensionSpec('tag-test:tag=blue')], { tagDep: 42 });
  const ext = stack.extensions[0] as TagExtension;
  t.is(ext.tag, 'blue');
  t.is(ext.depValue, 42);
  t.throws(() => parseExtensionSpec('tag-test'), { message: 'tag required' });
});

test('stack state saved bottom-up restores into a new stack with the same extensions', (t) => {
  const specs = [parseExtensionSpec('fault:call=read,p=0.5,seed=3'), parseExtensionSpec('metrics')];
  const a = composeExtensions(new FakeAbi(), specs);
  a.abi.now('monotonic');
  const saved = JSON.parse(JSON.stringify(saveStackState(a.extensions)));
  const b = composeExtensions(new FakeAbi(), specs);
  restoreStackState(b.extensions, saved);
  t.deepEqual(saveStackState(b.extensions), saveStackState(a.extensions));
  const c = composeExtensions(new FakeAbi(), [parseExtensionSpec('metrics')]);
  t.is(code(() => restoreStackState(c.extensions, saved)), 'WB_CONFIG_INVALID');
  t.is(code(() => restoreStackState(c.extensions, { v: 9 } as never)), 'WB_CHECKPOINT_VERSION');
});

test('observers higher in the stack time calls on the platform clock, so their timing reads are not traced', (t) => {
  const base = new FakeAbi();
  const sink = new MemoryTraceSink();
  const stack = composeExtensions(base, [parseExtensionSpec('trace'), parseExtensionSpec('metrics')], { traceSink: sink });
  const h = base.connection();
  stack.abi.poll(h);
  t.deepEqual(sink.records().map((r) => r.call), ['poll']);
});
