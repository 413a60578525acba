import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import type { Entry } from '../../../replica/coord/raft/raft-types.js';
import {
  currentView,
  decodeViewCommand,
  encodeViewCommand,
  encodeViewProposal,
  ViewStateMachine,
} from '../../../replica/coord/view-state-machine.js';

let nextIndex = 0;
function entry(data: Uint8Array, type: Entry['type'] = 'normal'): Entry {
  return { index: ++nextIndex, term: 1, type, data };
}

function fresh(): ViewStateMachine {
  nextIndex = 0;
  return new ViewStateMachine();
}

test('put writes and bumps the version; cas writes only at the expected version', (t) => {
  const sm = fresh();
  t.like(sm.applyEntry(entry(encodeViewCommand({ op: 'put', key: 'k', value: 'a' }, 'r1'))), { ok: true, version: 1, requestId: 'r1' });
  t.like(sm.applyEntry(entry(encodeViewCommand({ op: 'cas', key: 'k', expectedVersion: 1, value: 'b' }))), { ok: true, version: 2 });
  t.like(sm.applyEntry(entry(encodeViewCommand({ op: 'cas', key: 'k', expectedVersion: 1, value: 'c' }, 'r3'))), {
    ok: false,
    reason: 'conflict',
    currentVersion: 2,
    currentValue: 'b',
    requestId: 'r3',
  });
  t.like(sm.applyEntry(entry(encodeViewCommand({ op: 'cas', key: 'new', expectedVersion: 0, value: 'x' }))), { ok: true, version: 1 });
  t.deepEqual(sm.get('k'), { value: 'b', version: 2 });
  t.is(sm.appliedIndex, 4);
});

test('no-op and membership entries change nothing but advance the applied index', (t) => {
  const sm = fresh();
  t.is(sm.applyEntry(entry(new Uint8Array(0))), null);
  t.is(sm.applyEntry(entry(new Uint8Array([1, 2]), 'conf')), null);
  t.is(sm.appliedIndex, 2);
  t.is(sm.size, 0);
});

test('a malformed committed command gives the same "malformed" result everywhere and never throws', (t) => {
  const sm = fresh();
  for (const junk of ['not json', '{"v":2,"id":"","op":"put","key":"k","value":"v"}', '{"v":1,"id":"","op":"delete","key":"k","value":"v"}']) {
    t.like(sm.applyEntry(entry(new TextEncoder().encode(junk))), { ok: false, reason: 'malformed' });
  }
  t.is(sm.size, 0);
  t.is(decodeViewCommand(new Uint8Array([0xff])), undefined);
});

test('entries must be applied in order, each once', (t) => {
  const sm = fresh();
  sm.applyEntry(entry(new Uint8Array(0)));
  const err = t.throws(() => sm.applyEntry({ index: 5, term: 1, type: 'normal', data: new Uint8Array(0) }));
  t.true(isWaterbearError(err, 'WB_PROTOCOL'));
});

test('snapshot and restore round-trip; a wrong version or index is refused', (t) => {
  const sm = fresh();
  sm.applyEntry(entry(encodeViewCommand({ op: 'put', key: 'b', value: 'two' })));
  sm.applyEntry(entry(encodeViewCommand({ op: 'put', key: 'a', value: 'one' })));
  sm.applyEntry(entry(encodeViewCommand({ op: 'put', key: 'a', value: 'uno' })));
  const snap = sm.snapshot();
  const copy = new ViewStateMachine();
  copy.restore(sm.appliedIndex, snap);
  t.is(copy.appliedIndex, 3);
  t.deepEqual(copy.get('a'), { value: 'uno', version: 2 });
  t.deepEqual(copy.get('b'), { value: 'two', version: 1 });
  t.deepEqual(copy.snapshot(), snap, 'deterministic bytes');
  t.true(isWaterbearError(t.throws(() => copy.restore(4, snap)), 'WB_CHECKPOINT_CORRUPT'));
  const v9 = new TextEncoder().encode(JSON.stringify({ v: 9, applied: 3, kv: [] }));
  t.true(isWaterbearError(t.throws(() => copy.restore(3, v9)), 'WB_CHECKPOINT_VERSION'));
  t.true(isWaterbearError(t.throws(() => copy.restore(3, new Uint8Array([1]))), 'WB_CHECKPOINT_CORRUPT'));
});

test('view proposals are a cas on the view key whose version is the view number', (t) => {
  const sm = fresh();
  t.is(currentView(sm), null);
  const v1 = { view: 1, primary: 'w1', backups: ['w2'] };
  t.like(sm.applyEntry(entry(encodeViewProposal(0, v1, 'p1'))), { ok: true, version: 1 });
  t.deepEqual(currentView(sm), v1);
  // Two replicas race for view 2: only the first wins.
  const a = { view: 2, primary: 'w2', backups: [] };
  const b = { view: 2, primary: 'w3', backups: ['w2'] };
  t.like(sm.applyEntry(entry(encodeViewProposal(1, a))), { ok: true, version: 2 });
  t.like(sm.applyEntry(entry(encodeViewProposal(1, b))), { ok: false, reason: 'conflict', currentVersion: 2 });
  t.deepEqual(currentView(sm), a);
  t.true(isWaterbearError(t.throws(() => encodeViewProposal(1, { view: 3, primary: 'w1', backups: [] })), 'WB_CONFIG_INVALID'));
});
