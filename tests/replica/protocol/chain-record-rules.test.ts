import test from 'ava';
import { chainRecordAfterStore, chainRecordAfterView } from '../../../replica/protocol/chain-record-rules.js';

test('a stored checkpoint records its chain and view, and never moves the same chain back a view', (t) => {
  t.deepEqual(chainRecordAfterStore(null, 'a', 2), { primary: 'a', view: 2 });
  t.deepEqual(chainRecordAfterStore({ primary: 'a', view: 2 }, 'a', 3), { primary: 'a', view: 3 });
  t.is(chainRecordAfterStore({ primary: 'a', view: 3 }, 'a', 3), null, 'nothing new');
  t.is(chainRecordAfterStore({ primary: 'a', view: 3 }, 'a', 2), null, 'stored late, after the view moved on');
  t.deepEqual(chainRecordAfterStore({ primary: 'a', view: 3 }, 'b', 2), { primary: 'b', view: 2 }, 'another primary: its own chain');
});

test('the chain runs into the next view of the same primary only', (t) => {
  const rec = { primary: 'a', view: 2 };
  t.deepEqual(chainRecordAfterView(rec, { view: 3, primary: 'a', backups: ['b'] }, 'a'), { primary: 'a', view: 3 }, 'the view that added the joiner');
  t.is(chainRecordAfterView(rec, { view: 4, primary: 'a', backups: ['b'] }, 'a'), null, 'a view missed in between');
  t.is(chainRecordAfterView(rec, { view: 3, primary: 'b', backups: [] }, null), null, 'another primary');
  t.is(chainRecordAfterView(rec, { view: 3, primary: 'a', backups: ['b'] }, null), null, 'the protocol forgot the chain');
  t.is(chainRecordAfterView({ primary: 'c', view: 2 }, { view: 3, primary: 'a', backups: ['b'] }, 'a'), null,
    "the store still holds c's chain: a's is not on disk yet");
  t.is(chainRecordAfterView(null, { view: 3, primary: 'a', backups: ['b'] }, 'a'), null, 'no record: nothing stored');
});
