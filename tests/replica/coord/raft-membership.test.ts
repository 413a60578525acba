import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { applyConfChange, decodeConfEntry, encodeConfEntry, makeMembership } from '../../../replica/coord/raft/raft-membership.js';
import { bytes, TestCluster } from './helpers/raft-test-cluster.js';

function settle(c: TestCluster, ticks = 3): void {
  c.tick(ticks);
}

test('a learner receives the log but neither votes nor counts toward commit', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { joiners: ['d'] });
  c.elect('a');
  c.raft('a').proposeConfChange({ type: 'addLearner', node: 'd' });
  settle(c);
  t.deepEqual(c.raft('d').currentMembership.learners, ['d']);
  c.raft('a').propose(bytes('x'));
  settle(c);
  t.deepEqual(c.appliedValues('d'), ['x'], 'the learner replicates');
  // With b and c cut off, a and the learner d are not a quorum.
  c.isolate('b');
  c.isolate('c');
  const before = c.raft('a').commitIndex;
  c.raft('a').propose(bytes('y'));
  c.stabilize();
  t.is(c.raft('a').commitIndex, before);
  // A learner never campaigns.
  c.tick(50, ['d']);
  t.is(c.raft('d').currentRole, 'follower');
});

test('promoting a learner makes it a voter that counts toward the quorum', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { joiners: ['d'] });
  c.elect('a');
  c.raft('a').proposeConfChange({ type: 'addLearner', node: 'd' });
  settle(c);
  c.raft('a').proposeConfChange({ type: 'addVoter', node: 'd' });
  settle(c);
  t.deepEqual(c.raft('a').currentMembership, makeMembership(['a', 'b', 'c', 'd']));
  // 4 voters: quorum 3. a + b + d commit without c.
  c.isolate('c');
  const r = c.raft('a').propose(bytes('x'));
  c.stabilize();
  t.is(c.raft('a').commitIndex, r.index);
});

test('a new voter joins with an empty log and catches up', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { joiners: ['d'] });
  c.elect('a');
  for (let i = 0; i < 20; i++) c.raft('a').propose(bytes(`v${i}`));
  c.stabilize();
  c.raft('a').proposeConfChange({ type: 'addVoter', node: 'd' });
  settle(c);
  t.deepEqual(c.appliedValues('d'), c.appliedValues('a'));
  t.is(c.raft('d').currentMembership.voters.length, 4);
});

test('only one membership change may be pending at a time', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { joiners: ['d', 'e'] });
  c.elect('a');
  c.isolate('b');
  c.isolate('c');
  c.raft('a').proposeConfChange({ type: 'addLearner', node: 'd' });
  const err = t.throws(() => c.raft('a').proposeConfChange({ type: 'addLearner', node: 'e' }));
  t.true(isWaterbearError(err, 'WB_COORD_UNAVAILABLE'));
  c.heal();
  settle(c);
  t.notThrows(() => c.raft('a').proposeConfChange({ type: 'addLearner', node: 'e' }));
});

test('a new leader refuses membership changes until it has committed an entry of its term', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { joiners: ['d'] });
  c.isolate('b');
  c.isolate('c');
  c.raft('a').campaign();
  c.heal();
  c.raft('a').campaign();
  c.processReadies();
  // Deliver votes only, so a leads but its no-op is not yet committed.
  while (c.raft('a').currentRole !== 'leader' && c.deliverOne()) c.processReadies();
  t.is(c.raft('a').currentRole, 'leader');
  t.true(c.raft('a').commitIndex < c.raft('a').lastIndex);
  const err = t.throws(() => c.raft('a').proposeConfChange({ type: 'addLearner', node: 'd' }));
  t.true(isWaterbearError(err, 'WB_COORD_UNAVAILABLE'));
  c.stabilize();
  t.notThrows(() => c.raft('a').proposeConfChange({ type: 'addLearner', node: 'd' }));
});

test('a removed follower no longer counts, and stops campaigning once it knows', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.raft('a').proposeConfChange({ type: 'removeNode', node: 'c' });
  settle(c);
  t.deepEqual(c.raft('a').currentMembership.voters, ['a', 'b']);
  t.deepEqual(c.raft('c').currentMembership.voters, ['a', 'b']);
  const term = c.raft('a').currentTerm;
  c.tick(60, ['c']);
  t.is(c.raft('c').currentRole, 'follower');
  t.is(c.raft('c').currentTerm, term);
  // a + b are the whole quorum now.
  c.isolate('c');
  const r = c.raft('a').propose(bytes('x'));
  c.stabilize();
  t.is(c.raft('a').commitIndex, r.index);
});

test('removing the leader: it leads until the change commits, then hands over and steps down', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  const conf = c.raft('a').proposeConfChange({ type: 'removeNode', node: 'a' });
  t.is(c.raft('a').currentRole, 'leader', 'still leading while the removal is uncommitted');
  c.stabilize();
  t.not(c.raft('a').currentRole, 'leader');
  const leaders = c.leaders();
  t.is(leaders.length, 1);
  t.true(['b', 'c'].includes(leaders[0]));
  const newLeader = leaders[0];
  t.true(c.raft(newLeader).commitIndex >= conf.index);
  t.true(c.sent.some((m) => m.type === 'timeoutNow' && m.from === 'a'), 'the handover skipped an election timeout');
  // The remaining two commit; a never campaigns again.
  const r = c.raft(newLeader).propose(bytes('after'));
  c.tick(40);
  t.is(c.raft(newLeader).commitIndex >= r.index, true);
  t.false(c.leaders().includes('a'));
});

test('removing the leader while it cannot reach the others leaves it leading only until the change commits', (t) => {
  const c = new TestCluster(['a', 'b', 'c', 'd', 'e']);
  c.elect('a');
  c.isolate('e');
  c.raft('a').proposeConfChange({ type: 'removeNode', node: 'a' });
  c.stabilize();
  // New voters b, c, d, e: quorum 3 of 4 without counting a; b, c, d acknowledged.
  t.not(c.raft('a').currentRole, 'leader');
  c.heal();
  c.tick(30);
  const leaders = c.leaders();
  t.is(leaders.length, 1);
  t.not(leaders[0], 'a');
});

test('invalid membership changes are refused with WB_CONFIG_INVALID', (t) => {
  const m = makeMembership(['a', 'b'], ['l']);
  t.true(isWaterbearError(t.throws(() => applyConfChange(m, { type: 'addVoter', node: 'a' })), 'WB_CONFIG_INVALID'));
  t.true(isWaterbearError(t.throws(() => applyConfChange(m, { type: 'addLearner', node: 'b' })), 'WB_CONFIG_INVALID'));
  t.true(isWaterbearError(t.throws(() => applyConfChange(m, { type: 'removeNode', node: 'z' })), 'WB_CONFIG_INVALID'));
  t.true(isWaterbearError(t.throws(() => applyConfChange(makeMembership(['a']), { type: 'removeNode', node: 'a' })), 'WB_CONFIG_INVALID'));
  t.true(isWaterbearError(t.throws(() => applyConfChange(m, { type: 'bogus' as 'addVoter', node: 'x' })), 'WB_CONFIG_INVALID'));
  t.deepEqual(applyConfChange(m, { type: 'addVoter', node: 'l' }), makeMembership(['a', 'b', 'l']));
});

test('a membership entry that is truncated reverts the membership', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { joiners: ['d'], options: { checkQuorum: false } });
  c.elect('a');
  // a appends a membership change that only b receives... then both lose it to a new leader c.
  c.isolate('a');
  c.raft('a').proposeConfChange({ type: 'addLearner', node: 'd' });
  c.stabilize();
  t.deepEqual(c.raft('a').currentMembership.learners, ['d'], 'in effect as soon as it is in the log');
  c.tick(40, ['b', 'c']);
  const [leader] = c.leaders().filter((id) => id !== 'a');
  c.raft(leader).propose(bytes('x'));
  c.stabilize();
  c.heal();
  c.tick(3);
  t.deepEqual(c.raft('a').currentMembership.learners, [], 'the truncated change no longer applies');
});

test('membership entries round-trip and refuse unknown versions', (t) => {
  const payload = { change: { type: 'addVoter' as const, node: 'x' }, membership: makeMembership(['a', 'x'], ['l']) };
  t.deepEqual(decodeConfEntry(encodeConfEntry(payload)), payload);
  const bad = new TextEncoder().encode(JSON.stringify({ v: 99, change: null, voters: [], learners: [] }));
  t.true(isWaterbearError(t.throws(() => decodeConfEntry(bad)), 'WB_PROTOCOL'));
});
