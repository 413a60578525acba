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
