import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { bytes, text, TestCluster } from './helpers/raft-test-cluster.js';

test('compaction drops the log prefix and hands the snapshot to the driver to persist', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  for (let i = 0; i < 10; i++) c.raft('a').propose(bytes(`v${i}`));
  c.stabilize();
  const applied = c.raft('a').status().applied;
  c.raft('a').compact(applied, bytes('state-at-applied'));
  t.is(c.raft('a').snapshotIndex, applied);
  t.is(c.raft('a').entryAt(applied), undefined);
  const rd = c.raft('a').ready();
  t.is(rd.compacted?.meta.index, applied);
  t.is(rd.snapshot, null, 'a local compaction is not something to apply');
  c.node('a').storage.saveSync(rd);
  const stored = c.node('a').storage.load();
  t.is(stored.snapshot.meta.index, applied);
  t.is(stored.entries.length, c.raft('a').lastIndex - applied);
  t.deepEqual(stored.snapshot.meta.membership.voters, ['a', 'b', 'c']);
});

test('compacting above the applied index is refused with WB_PROTOCOL; below the snapshot it is a no-op', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.raft('a').propose(bytes('x'));
  const err = t.throws(() => c.raft('a').compact(c.raft('a').lastIndex, bytes('s')));
  t.true(isWaterbearError(err, 'WB_PROTOCOL'));
  c.stabilize();
  c.raft('a').compact(2, bytes('s'));
  t.notThrows(() => c.raft('a').compact(1, bytes('older')));
  t.is(c.raft('a').snapshotIndex, 2);
});

test('a follower behind the compacted log gets InstallSnapshot and then the rest of the log', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('c');
  for (let i = 0; i < 20; i++) c.raft('a').propose(bytes(`v${i}`));
  c.stabilize();
  const snapIndex = c.raft('a').commitIndex;
  c.raft('a').compact(snapIndex, bytes('SNAPSHOT'));
  c.raft('a').propose(bytes('after'));
  c.stabilize();
  c.heal();
  c.tick(3);
  t.true(c.sent.some((m) => m.type === 'snap' && m.to === 'c'));
  const installed = c.node('c').installedSnapshots;
  t.is(installed.length, 1);
  t.is(installed[0].meta.index, snapIndex);
  t.is(text(installed[0].data), 'SNAPSHOT');
  t.is(c.raft('c').commitIndex, c.raft('a').commitIndex);
  t.deepEqual(c.appliedValues('c'), ['after'], 'entries after the snapshot are applied normally');
  // The snapshot Ready replaced c's persisted log.
  const stored = c.node('c').storage.load();
  t.is(stored.snapshot.meta.index, snapIndex);
  t.is(stored.entries[0]?.index, snapIndex + 1);
});

test('a lost snapshot is sent again after snapshotRetryTicks', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { snapshotRetryTicks: 5 } });
  c.elect('a');
  c.isolate('c');
  for (let i = 0; i < 5; i++) c.raft('a').propose(bytes(`v${i}`));
  c.stabilize();
  c.raft('a').compact(c.raft('a').commitIndex, bytes('S'));
  c.heal();
  c.dropIf = (m) => m.type === 'snap';
  c.tick(2);
  const sentBefore = c.sent.filter((m) => m.type === 'snap').length;
  t.is(sentBefore, 1, 'one snapshot in flight at a time');
  c.dropIf = () => false;
  c.tick(6);
  t.true(c.sent.filter((m) => m.type === 'snap').length >= 2);
  t.is(c.raft('c').commitIndex, c.raft('a').commitIndex);
});

test('a new member learns the membership from the snapshot it installs', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { joiners: ['d'] });
  c.elect('a');
  c.raft('a').proposeConfChange({ type: 'addLearner', node: 'd' });
  c.isolate('d');
  c.stabilize();
  for (let i = 0; i < 5; i++) c.raft('a').propose(bytes(`v${i}`));
  c.stabilize();
  c.raft('a').compact(c.raft('a').commitIndex, bytes('S'));
  c.heal();
  c.tick(3);
  t.is(c.node('d').installedSnapshots.length, 1);
  t.deepEqual(c.raft('d').currentMembership.learners, ['d']);
  t.deepEqual(c.raft('d').currentMembership.voters, ['a', 'b', 'c']);
});

test('a restarted node rebuilds from its persisted snapshot and log', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  for (let i = 0; i < 6; i++) c.raft('a').propose(bytes(`v${i}`));
  c.stabilize();
  const b = c.raft('b');
  b.compact(4, bytes('S4'));
  c.stabilize();
  const before = b.status();
  c.crash('b');
  c.restart('b');
  const after = c.raft('b').status();
  t.is(after.snapshotIndex, 4);
  t.is(after.lastIndex, before.lastIndex);
  t.is(after.term, before.term);
  t.is(after.commit, before.commit);
  // Committed entries after the snapshot are handed out again for the state machine to replay.
  const rd = c.raft('b').ready();
  t.deepEqual(rd.committedEntries.map((e) => e.index), Array.from({ length: before.commit - 4 }, (_, i) => 5 + i));
});
