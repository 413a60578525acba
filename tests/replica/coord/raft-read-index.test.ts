import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { bytes, TestCluster } from './helpers/raft-test-cluster.js';

test('the leader confirms a ReadIndex only after a heartbeat round reaches a quorum', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.raft('a').propose(bytes('x'));
  c.stabilize();
  const commit = c.raft('a').commitIndex;
  c.raft('a').readIndex('r1');
  c.processReadies();
  t.deepEqual(c.node('a').readStates, [], 'not before the heartbeat answers');
  const hb = c.queue.filter((m) => m.type === 'heartbeat' && m.context === 'r1');
  t.is(hb.length, 2);
  c.stabilize();
  t.deepEqual(c.node('a').readStates, [{ index: commit, context: 'r1' }]);
});

test('a ReadIndex waits until the new leader has committed an entry of its own term', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.raft('a').campaign();
  c.processReadies();
  while (c.raft('a').currentRole !== 'leader' && c.deliverOne()) c.processReadies();
  t.is(c.raft('a').currentRole, 'leader');
  t.true(c.raft('a').commitIndex < c.raft('a').lastIndex, 'the no-op is not committed yet');
  c.raft('a').readIndex('early');
  c.stabilize();
  t.deepEqual(c.node('a').readStates, [{ index: c.raft('a').lastIndex, context: 'early' }], 'served at the commit that includes the no-op');
});

test('an isolated leader never confirms a read, even while it still believes it leads', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { checkQuorum: false } });
  c.elect('a');
  c.isolate('a');
  c.tick(30, ['b', 'c']);
  const [newLeader] = c.leaders().filter((id) => id !== 'a');
  t.truthy(newLeader);
  c.raft(newLeader).propose(bytes('newer'));
  c.stabilize();
  t.is(c.raft('a').currentRole, 'leader');
  c.raft('a').readIndex('stale?');
  c.tick(5, ['a']);
  t.deepEqual(c.node('a').readStates, []);
  // Once it hears the others it learns the newer term and steps down; the read is dropped, never answered.
  c.heal();
  c.tick(2);
  t.not(c.raft('a').currentRole, 'leader');
  t.deepEqual(c.node('a').readStates, []);
});

test('with the unsafe readIndexWithoutHeartbeat bug an isolated leader answers a stale read', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { checkQuorum: false }, bugs: { readIndexWithoutHeartbeat: true } });
  c.elect('a');
  c.isolate('a');
  c.tick(30, ['b', 'c']);
  const [newLeader] = c.leaders().filter((id) => id !== 'a');
  c.raft(newLeader).propose(bytes('newer'));
  c.stabilize();
  c.raft('a').readIndex('stale');
  c.processReadies();
  const [rs] = c.node('a').readStates;
  t.truthy(rs);
  t.true(rs.index < c.raft(newLeader).commitIndex, 'the read misses a committed write');
});

test('ReadIndex on a follower is refused with WB_NOT_LEADER', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  const err = t.throws(() => c.raft('b').readIndex('r'));
  t.true(isWaterbearError(err, 'WB_NOT_LEADER'));
  t.true(isWaterbearError(t.throws(() => c.raft('a').readIndex('')), 'WB_PROTOCOL'));
});

test('a single-voter cluster answers a read at once', (t) => {
  const c = new TestCluster(['solo']);
  c.elect('solo');
  c.raft('solo').readIndex('r');
  c.processReadies();
  t.deepEqual(c.node('solo').readStates, [{ index: c.raft('solo').commitIndex, context: 'r' }]);
});

test('an acknowledgement of a later read confirms the earlier ones too, in order', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.dropIf = (m) => m.type === 'heartbeat';
  c.raft('a').readIndex('r1');
  c.raft('a').readIndex('r2');
  c.stabilize();
  t.deepEqual(c.node('a').readStates, []);
  c.dropIf = () => false;
  c.raft('a').readIndex('r3');
  c.stabilize();
  t.deepEqual(
    c.node('a').readStates.map((r) => r.context),
    ['r1', 'r2', 'r3'],
  );
});
