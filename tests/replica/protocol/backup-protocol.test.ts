import test from 'ava';
import { BackupProtocol } from '../../../replica/protocol/backup-protocol.js';
import type { View } from '../../../replica/protocol/view.js';

const V1: View = { view: 1, primary: 'a', backups: ['b'] };

function backupWithChain(): BackupProtocol {
  const p = new BackupProtocol('b', V1);
  t0(p.onCheckpoint('a', 1, 1, true), 'apply');
  t0(p.onApplied(1, true), 'ack');
  return p;
}
function t0(actions: Array<{ kind: string }>, kind: string): void {
  if (actions.length !== 1 || actions[0].kind !== kind) throw new Error(`expected one ${kind}, got ${JSON.stringify(actions)}`);
}

test('several consecutive checkpoints may be pending at once (group commit); each is acknowledged in order once stored', (t) => {
  const p = backupWithChain();
  for (const e of [2, 3, 4]) t.deepEqual(p.onCheckpoint('a', 1, e, false), [{ kind: 'apply', epoch: e, full: false }]);
  t.deepEqual(p.pendingEpochs, [2, 3, 4]);
  t.deepEqual(p.onApplied(3, false), [], 'not the oldest pending: ignored');
  t.deepEqual(p.onApplied(2, false), [{ kind: 'ack', view: 1, epoch: 2 }]);
  t.deepEqual(p.onApplied(3, false), [{ kind: 'ack', view: 1, epoch: 3 }]);
  t.deepEqual(p.onApplied(4, false), [{ kind: 'ack', view: 1, epoch: 4 }]);
  t.is(p.durableEpoch, 4);
});

test('a pending batch is checked against its own tail: gaps and replays are refused', (t) => {
  const p = backupWithChain();
  p.onCheckpoint('a', 1, 2, false);
  t.is(p.onCheckpoint('a', 1, 4, false)[0].kind, 'nack', 'gap after the pending 2');
  t.is(p.onCheckpoint('a', 1, 2, false)[0].kind, 'nack', 'replay of the pending 2');
  t.is(p.onCheckpoint('a', 1, 3, false)[0].kind, 'apply');
});

test('when a pending checkpoint fails, the ones after it are dropped and the primary is asked for a full image', (t) => {
  const p = backupWithChain();
  for (const e of [2, 3, 4]) p.onCheckpoint('a', 1, e, false);
  t.deepEqual(p.onApplied(2, false), [{ kind: 'ack', view: 1, epoch: 2 }]);
  const nack = p.onApplyFailed(3, 'WB_STORE_FULL', 'disk full');
  t.deepEqual(nack, [{ kind: 'nack', view: 1, epoch: 3, code: 'WB_STORE_FULL', reason: 'disk full' }]);
  t.deepEqual(p.pendingEpochs, []);
  t.deepEqual(p.onApplied(4, false), [], 'a dropped epoch is never acknowledged');
  t.is(p.durableEpoch, 2);
  t.is(p.onCheckpoint('a', 1, 5, false)[0].kind, 'nack', 'the chain continues from 3 only');
  t.is(p.onCheckpoint('a', 1, 5, true)[0].kind, 'apply', 'a full image restarts it');
});

test('a backup whose store lost acknowledged epochs never takes over until it stores a full image', (t) => {
  const p = backupWithChain();
  p.onCheckpoint('a', 1, 2, false);
  p.onApplied(2, false);
  t.is(p.onPrimaryDead()[0]?.kind, 'propose', 'with its chain, it would take over');
  p.onProposalFailed();
  p.onStoreLost();
  t.deepEqual(p.onPrimaryDead(), []);
  t.is(p.onCheckpoint('a', 1, 3, false)[0].kind, 'nack', 'incrementals are refused: it needs a full image');
  t.is(p.onCheckpoint('a', 1, 3, true)[0].kind, 'apply');
  p.onApplied(3, true);
  t.is(p.onPrimaryDead()[0]?.kind, 'propose');
});

test('a chain restored from disk lets a restarted backup take over only in the view it was stored in', (t) => {
  // Whole-cluster restart: the view did not change, the chain is the primary's current one.
  const same = new BackupProtocol('b', null, { durable: 7, chainPrimary: 'a', chainView: 1 });
  t.deepEqual(same.onViewCommitted(V1), []);
  t.is(same.durableEpoch, 7);
  t.is(same.onPrimaryDead()[0]?.kind, 'propose');
});

test('a chain restored from disk is forgotten in a later view of the same primary: it may be on a new chain', (t) => {
  // b stored a's chain in view 1, was primary in views 2-3 and handed back to a by switchover:
  // view 4 {a, [b]}, where a runs a chain that started from b's state. b's disk is two views old.
  const p = new BackupProtocol('b', null, { durable: 90, chainPrimary: 'a', chainView: 1 });
  t.deepEqual(p.onViewCommitted({ view: 4, primary: 'a', backups: ['b'] }), []);
  t.is(p.durableEpoch, 0);
  t.deepEqual(p.onPrimaryDead(), [], 'no takeover with a state older than what a released');
  const withView = new BackupProtocol('b', { view: 4, primary: 'a', backups: ['b'] }, { durable: 90, chainPrimary: 'a', chainView: 1 });
  t.is(withView.durableEpoch, 0, 'the same when the view is known at construction');
});

test('a backup that did not see every view forgets its chain, even under the same primary', (t) => {
  const p = backupWithChain();
  t.deepEqual(p.onViewCommitted({ view: 3, primary: 'a', backups: ['b'] }), []);
  t.is(p.durableEpoch, 0);
  const q = backupWithChain();
  t.deepEqual(q.onViewCommitted({ view: 2, primary: 'a', backups: ['b'] }), []);
  t.is(q.durableEpoch, 1, 'the next view of the same primary keeps it');
});
