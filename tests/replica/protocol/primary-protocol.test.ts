import test from 'ava';
import { PrimaryProtocol } from '../../../replica/protocol/primary-protocol.js';
import type { View } from '../../../replica/protocol/view.js';

const PROTECTED: View = { view: 5, primary: 'a', backups: ['b'] };
const kinds = (actions: Array<{ kind: string }>): string[] => actions.map((x) => x.kind);

function primary(view: View): PrimaryProtocol {
  const p = new PrimaryProtocol('a', view, 0);
  p.start();
  return p;
}

test('a primary whose lease is lost steps down when a backup can take over', (t) => {
  const p = primary(PROTECTED);
  t.true(p.mayStepDown);
  t.deepEqual(kinds(p.onLeaseLost()), ['fence']);
});

test('a primary without backups keeps its state when its lease is lost: nobody else holds it', (t) => {
  const p = primary({ view: 6, primary: 'a', backups: [] });
  t.false(p.mayStepDown);
  t.deepEqual(p.onLeaseLost(), []);
  t.true(p.onViewCommitted({ view: 7, primary: 'b', backups: [] }).some((x) => x.kind === 'fence'), 'a newer view still fences it');
});

test('while a proposal that drops the last backup may still commit, the primary does not step down (chaos finding 8)', (t) => {
  const p = primary(PROTECTED);
  t.deepEqual(kinds(p.onBackupFailed('b')), ['propose']);
  // The coordinator did not answer in time: the view {a, []} may commit after all.
  p.onProposalFailed(false);
  t.false(p.mayStepDown);
  t.deepEqual(p.onLeaseLost(), []);
  // It did commit: a is the only holder of the state; still no step-down.
  p.onViewCommitted({ view: 6, primary: 'a', backups: [] });
  t.deepEqual(p.onLeaseLost(), []);
});

test('a proposal the coordinator refused cannot commit: stepping down is allowed again', (t) => {
  const p = primary(PROTECTED);
  p.onBackupFailed('b');
  p.onProposalFailed(true);
  t.true(p.mayStepDown);
  t.deepEqual(kinds(p.onLeaseLost()), ['fence']);
});

test('a newer view with a backup settles an unknown proposal outcome', (t) => {
  const p = primary(PROTECTED);
  p.onBackupFailed('b');
  p.onProposalFailed(false);
  p.onViewCommitted({ view: 7, primary: 'a', backups: ['b'] });
  t.true(p.mayStepDown);
});

test('an unprotected primary does not hold output for a joiner that has acknowledged nothing, even when few epochs exist', (t) => {
  const p = primary({ view: 6, primary: 'a', backups: [] });
  t.deepEqual(kinds(p.onJoinRequest('b')), ['stream-to']);
  for (let e = 1; e <= 3; e++) t.false(p.onCaptured(e).some((x) => x.kind === 'passthrough'), `epoch ${e}: still passing output through`);
  // Once it acknowledged an epoch (it holds a chain) and is close, output is held for it.
  t.true(p.onAck('b', 6, 3).some((x) => x.kind === 'passthrough' || x.kind === 'checkpoint'));
});

/** An unprotected primary holding output for joiner b, which acknowledged epoch 3 of 3. */
function holdingForJoiner(): PrimaryProtocol {
  const p = primary({ view: 6, primary: 'a', backups: [] });
  p.onJoinRequest('b');
  for (let e = 1; e <= 3; e++) p.onCaptured(e);
  t0(p.onAck('b', 6, 3), ['passthrough', 'checkpoint']);
  return p;
}
function t0(actions: Array<{ kind: string; on?: boolean }>, want: string[]): void {
  const got = kinds(actions);
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`setup: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}
const passthroughOn = (actions: Array<{ kind: string; on?: boolean }>): boolean => actions.some((x) => x.kind === 'passthrough' && x.on === true);

test('an unprotected primary whose held-for joiner fails releases without acknowledgements again', (t) => {
  const p = holdingForJoiner();
  p.onCaptured(4); // replies of epoch 4 are held for b
  t.is(p.releasedEpoch, 3);
  const out = p.onBackupFailed('b');
  t.deepEqual(kinds(out), ['stop-stream', 'passthrough']);
  t.true(passthroughOn(out));
  t.is(p.releasedEpoch, 4, 'everything captured leaves');
  t.deepEqual(kinds(p.onCaptured(5)), [], 'and keeps leaving');
  t.is(p.releasedEpoch, 5);
});

test('removing a held-for joiner by hand also resumes passthrough', (t) => {
  const p = holdingForJoiner();
  t.true(passthroughOn(p.onRemoveBackup('b')));
});

test('while the view adding a joiner may still commit, its failure keeps output held; a refusal ends the hold', (t) => {
  let p = holdingForJoiner();
  p.onCaptured(4);
  t.deepEqual(kinds(p.onAck('b', 6, 4)), ['propose']);
  t.false(passthroughOn(p.onBackupFailed('b')), 'the view {a, b} may commit: b must hold all released output');
  t.false(passthroughOn(p.onProposalFailed(false)), 'outcome unknown: it may still commit');
  p = holdingForJoiner();
  p.onCaptured(4);
  p.onAck('b', 6, 4);
  p.onBackupFailed('b');
  t.true(passthroughOn(p.onProposalFailed(true)), 'refused: it never commits');
});

test('a second joiner still held for keeps output held when the first fails', (t) => {
  const p = holdingForJoiner();
  p.onJoinRequest('c');
  p.onAck('c', 6, 3);
  p.onCaptured(4);
  t.false(passthroughOn(p.onBackupFailed('b')));
  t.true(passthroughOn(p.onBackupFailed('c')));
});

test('a joiner held for in a protected view is held for again after the view loses its last backup', (t) => {
  const p = primary({ view: 5, primary: 'a', backups: ['b'] });
  p.onJoinRequest('c');
  p.onCaptured(1);
  p.onAck('b', 5, 1);
  t.deepEqual(kinds(p.onAck('c', 5, 1)), ['checkpoint'], 'c is close: the hold starts (output is held anyway)');
  p.onBackupFailed('b');
  t.true(passthroughOn(p.onViewCommitted({ view: 6, primary: 'a', backups: [] })));
  // Unprotected now: c is held for again from the next capture (it is close), then added.
  t.deepEqual(p.onCaptured(2), [{ kind: 'passthrough', on: false }]);
  t.deepEqual(kinds(p.onAck('c', 6, 2)), ['propose']);
});
