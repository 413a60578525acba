import test from 'ava';
import { JOIN_RETRY_MAX_TICKS, PrimaryProtocol } from '../../../replica/protocol/primary-protocol.js';
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

/** A protected primary (view 5, backup b) whose proposal of view 6 adding joiner c is in flight; all three hold epoch 2. */
function proposingJoinWhileProtected(): PrimaryProtocol {
  const p = primary(PROTECTED);
  p.onJoinRequest('c');
  p.onCaptured(1);
  p.onAck('b', 5, 1);
  t0(p.onAck('c', 5, 1), ['checkpoint']);
  p.onCaptured(2);
  p.onAck('b', 5, 2);
  t0(p.onAck('c', 5, 2), ['propose']);
  return p;
}
const released = (actions: Array<{ kind: string; epoch?: number }>): number | undefined => actions.find((x) => x.kind === 'release')?.epoch;

test('while a view adding a joiner is proposed, output leaves once the backups and the joiner hold it', (t) => {
  const p = proposingJoinWhileProtected();
  p.onCaptured(3);
  t.is(released(p.onAck('b', 5, 3)), undefined, 'the joiner does not hold epoch 3 yet');
  t.is(released(p.onAck('c', 5, 3)), 3);
});

test('a join proposal that timed out may commit late: output still waits for the joiner (single-failure safety)', (t) => {
  const p = proposingJoinWhileProtected();
  p.onCaptured(3);
  p.onAck('b', 5, 3);
  // Before: the timeout released epoch 3 on b's ack alone; view 6 then committed with c lacking it,
  // and c could take over from a dead primary with a state older than what clients had seen.
  t.is(released(p.onProposalFailed(false)), undefined);
  t.is(p.releasedEpoch, 2);
  t.is(released(p.onAck('c', 5, 3)), 3);
  p.onViewCommitted({ view: 6, primary: 'a', backups: ['b', 'c'] });
  t.is(p.ackedBy('c'), 3);
});

test('a join proposal that timed out and then lost to another view stops holding for the joiner', (t) => {
  const p = proposingJoinWhileProtected();
  p.onCaptured(3);
  p.onAck('b', 5, 3);
  p.onProposalFailed(false);
  // Our retry (or anyone's view) numbered 6 committed without c: the old proposal can never commit.
  t.is(released(p.onViewCommitted({ view: 6, primary: 'a', backups: ['b'] })), 3);
});

test('a timed-out join proposal whose joiner is gone is settled by proposing the current membership', (t) => {
  const p = proposingJoinWhileProtected();
  p.onCaptured(3);
  p.onAck('b', 5, 3);
  p.onProposalFailed(false);
  t.deepEqual(p.settleUncertainViews(), [], 'the joiner is still there: its own retry settles it');
  p.onBackupFailed('c');
  t.is(p.releasedEpoch, 2, 'view 6 with c may still commit: c must hold what is released');
  const out = p.settleUncertainViews();
  t.deepEqual(out, [{ kind: 'propose', view: { view: 6, primary: 'a', backups: ['b'] } }]);
  t.deepEqual(p.settleUncertainViews(), [], 'one proposal at a time');
  t.is(released(p.onViewCommitted({ view: 6, primary: 'a', backups: ['b'] })), 3);
  t.deepEqual(p.settleUncertainViews(), [], 'settled');
});

test('an unprotected primary whose join proposal timed out keeps passthrough off until the view is settled', (t) => {
  const p = holdingForJoiner();
  p.onCaptured(4);
  t0(p.onAck('b', 6, 4), ['propose']);
  t.false(passthroughOn(p.onProposalFailed(false)));
  t.deepEqual(kinds(p.onCaptured(5)), [], 'not at once: the coordinator may be failing');
  t.deepEqual(kinds(p.onTick()), ['propose'], 'the join is retried at the next tick');
  t.is(released(p.onAck('b', 6, 5)), 5, 'what the joiner holds may leave: view 7 with it may commit');
  t.false(passthroughOn(p.onBackupFailed('b')), 'b is gone, but view 7 with b may still commit');
  t.false(passthroughOn(p.onProposalFailed(false)), 'the retry timed out too');
  t.deepEqual(p.settleUncertainViews(), [{ kind: 'propose', view: { view: 7, primary: 'a', backups: [] } }]);
  t.true(passthroughOn(p.onViewCommitted({ view: 7, primary: 'a', backups: [] })));
});

test('a join whose proposals keep failing is retried after 1, 2, 4… ticks, up to JOIN_RETRY_MAX_TICKS, not at every capture', (t) => {
  const p = holdingForJoiner();
  p.onCaptured(4);
  t0(p.onAck('b', 6, 4), ['propose']);
  const waits: number[] = [];
  let epoch = 4;
  for (let failure = 1; failure <= 6; failure++) {
    p.onProposalFailed(false);
    let ticks = 0;
    for (;;) {
      epoch++;
      // Captures and the joiner's acks in between propose nothing: the coordinator is failing.
      t.false(p.onCaptured(epoch).some((x) => x.kind === 'propose'), `capture ${epoch} after failure ${failure}`);
      t.false(p.onAck('b', 6, epoch).some((x) => x.kind === 'propose'), `ack ${epoch} after failure ${failure}`);
      ticks++;
      if (p.onTick().some((x) => x.kind === 'propose')) break;
      if (ticks > 100) t.fail('never retried');
    }
    waits.push(ticks);
  }
  t.deepEqual(waits, [1, 2, 4, 8, JOIN_RETRY_MAX_TICKS, JOIN_RETRY_MAX_TICKS]);
  // It commits: the next joiner starts without backoff.
  p.onViewCommitted({ view: 7, primary: 'a', backups: ['b'] });
  t.deepEqual(p.onTick(), []);
});

test('a failed switchover does not delay a join', (t) => {
  const p = primary(PROTECTED);
  p.onJoinRequest('c');
  p.onCaptured(1);
  p.onAck('b', 5, 1);
  t.deepEqual(kinds(p.onSwitchover('b') as Array<{ kind: string }>), ['propose']);
  p.onProposalFailed(false);
  // c catches up: its join is proposed at once (the switchover's failure is not a join's).
  t0(p.onAck('c', 5, 1), ['checkpoint']);
  p.onCaptured(2);
  p.onAck('b', 5, 2);
  t.deepEqual(kinds(p.onAck('c', 5, 2)), ['propose']);
});

test('a backup removed while another view change is in flight leaves the view once that one commits', (t) => {
  const p = primary({ view: 5, primary: 'a', backups: ['b', 'c'] });
  t.deepEqual(kinds(p.onBackupFailed('c')), ['propose']); // {a, [b]} in flight
  t.deepEqual(p.onRemoveBackup('b'), [], 'one proposal at a time');
  t.deepEqual(p.onViewCommitted({ view: 6, primary: 'a', backups: ['b'] }).filter((x) => x.kind === 'propose'), []);
  const next = p.onTick().find((x) => x.kind === 'propose');
  t.deepEqual(next, { kind: 'propose', view: { view: 7, primary: 'a', backups: [] } }, 'the tick proposes the removal');
  p.onViewCommitted({ view: 7, primary: 'a', backups: [] });
  t.deepEqual(p.onTick().filter((x) => x.kind === 'propose'), [], 'nothing left to remove');
  t.deepEqual(p.onJoinRequest('b'), [], 'still refused until added back');
  p.onAddBackup('b');
  t.deepEqual(kinds(p.onJoinRequest('b')), ['stream-to']);
});
