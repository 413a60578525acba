import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { RaftNode } from '../../../replica/coord/raft/raft-node.js';
import { SeededRandom } from '../../../replica/coord/raft/raft-random.js';
import { emptyPersistedState, makeMessage, type Message } from '../../../replica/coord/raft/raft-types.js';
import { TestCluster } from './helpers/raft-test-cluster.js';

test('a three-node cluster elects exactly one leader once the election timeout passes', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  t.deepEqual(c.leaders(), []);
  c.tick(25);
  const leaders = c.leaders();
  t.is(leaders.length, 1);
  const leader = leaders[0];
  for (const id of ['a', 'b', 'c']) t.is(c.raft(id).leader, leader);
  // Term 1 is the bootstrap term; the first election is term 2.
  t.is(c.raft(leader).currentTerm, 2);
});

test('the vote is in the hard state of the same Ready as the vote response', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { preVote: false } });
  c.raft('a').campaign();
  c.processReadies();
  c.deliverOne(); // a's vote request reaches b (FIFO: b first)
  const b = c.raft('b');
  const rd = b.ready();
  const resp = rd.messages.find((m) => m.type === 'voteResp');
  t.truthy(resp);
  t.false(resp?.reject);
  t.deepEqual(rd.hardState, { term: 2, vote: 'a', commit: 1 });
});

test('a node restarted from storage keeps its term and vote and does not vote for another candidate in that term', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { preVote: false } });
  c.isolate('c');
  c.elect('a');
  t.is(c.raft('b').status().vote, 'a');
  c.crash('b');
  c.restart('b');
  const s = c.raft('b').status();
  t.is(s.term, 2);
  t.is(s.vote, 'a');
  // A competing candidate in the same term is refused.
  c.raft('b').step(makeMessage({ type: 'vote', from: 'c', to: 'b', term: 2, index: 5, logTerm: 1 }));
  const resp = c.raft('b').ready().messages.find((m) => m.type === 'voteResp');
  t.true(resp?.reject);
});

test('a candidate whose log is behind does not win votes (election restriction)', (t) => {
  // No lease and no pre-vote, so only the log comparison can refuse the vote.
  const c = new TestCluster(['a', 'b', 'c'], { options: { checkQuorum: false, preVote: false } });
  c.elect('a');
  c.isolate('c');
  c.raft('a').propose(new Uint8Array([1]));
  c.stabilize();
  c.heal();
  c.isolate('a');
  c.raft('c').campaign();
  c.stabilize();
  t.not(c.raft('c').currentRole, 'leader');
  const refusal = c.sent.find((m) => m.type === 'voteResp' && m.from === 'b' && m.to === 'c');
  t.true(refusal?.reject, 'b refuses c because c lacks the committed entry');
  c.raft('b').campaign();
  c.stabilize();
  t.is(c.raft('b').currentRole, 'leader');
});

test('pre-vote: a partitioned node does not raise its term, and rejoining does not depose the leader', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  const term = c.raft('a').currentTerm;
  c.isolate('c');
  c.tick(100, ['c']);
  t.is(c.raft('c').currentTerm, term, 'pre-elections never change the term');
  c.heal();
  c.tick(3);
  t.is(c.raft('a').currentRole, 'leader');
  t.is(c.raft('a').currentTerm, term);
  t.is(c.raft('c').leader, 'a');
});

test('without pre-vote a partitioned node raises its term on every timeout', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { preVote: false } });
  c.elect('a');
  const term = c.raft('a').currentTerm;
  c.isolate('c');
  c.tick(100, ['c']);
  t.true(c.raft('c').currentTerm > term + 3);
});

test('check-quorum: a leader cut off from the quorum steps down within two election timeouts', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('a');
  c.tick(20, ['a']);
  t.is(c.raft('a').currentRole, 'follower');
});

test('without check-quorum an isolated leader keeps believing it leads', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { checkQuorum: false } });
  c.elect('a');
  c.isolate('a');
  c.tick(50, ['a']);
  t.is(c.raft('a').currentRole, 'leader');
});

test('leader lease: voters that hear from a leader ignore a vote request with a higher term', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { preVote: false } });
  c.elect('a');
  const term = c.raft('a').currentTerm;
  c.raft('b').step(makeMessage({ type: 'vote', from: 'c', to: 'b', term: term + 5, index: 100, logTerm: 100 }));
  t.is(c.raft('b').currentTerm, term, 'the request is ignored entirely');
  t.false(c.raft('b').hasReady() && c.raft('b').ready().messages.some((m) => m.type === 'voteResp'));
});

test('a stale leader that hears a higher term steps down', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { checkQuorum: false } });
  c.elect('a');
  c.isolate('a');
  c.elect('b');
  t.is(c.raft('b').currentRole, 'leader');
  t.is(c.raft('a').currentRole, 'leader');
  c.heal();
  c.tick(2);
  t.deepEqual(c.leaders(), ['b']);
});

test('a vote request from a lower term is refused with the current term, so the candidate catches up', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { preVote: false } });
  c.elect('a');
  const term = c.raft('b').currentTerm;
  c.raft('b').step(makeMessage({ type: 'vote', from: 'c', to: 'b', term: term - 1, index: 99, logTerm: 99 }));
  const [resp] = c.raft('b').ready().messages.filter((m) => m.type === 'voteResp');
  t.like(resp, { to: 'c', term, reject: true });
  t.is(c.raft('b').status().vote, 'a', 'the refusal changes nothing on the voter');
});

test('a candidate re-sends unanswered vote requests every heartbeat interval', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { preVote: false } });
  c.dropIf = (m) => m.type === 'vote' && m.to === 'c';
  c.isolate('b');
  c.raft('a').campaign();
  c.stabilize();
  c.raft('a').tick();
  c.processReadies();
  t.is(c.sent.filter((m) => m.type === 'vote' && m.to === 'c').length, 2);
  c.heal();
  c.isolate('b');
  c.raft('a').tick();
  c.stabilize();
  t.is(c.raft('a').currentRole, 'leader');
});

test('the randomized election timeout comes only from the seeded random source', (t) => {
  const firstCampaignTick = (seed: number): number => {
    const node = new RaftNode({ id: 'a', persisted: emptyPersistedState(), random: new SeededRandom(seed), bootstrapVoters: ['a', 'b', 'c'] });
    node.ready();
    for (let i = 1; i <= 100; i++) {
      node.tick();
      if (node.currentRole !== 'follower') return i;
    }
    return -1;
  };
  t.is(firstCampaignTick(7), firstCampaignTick(7));
  const ticks = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(firstCampaignTick));
  for (const k of ticks) t.true(k >= 10 && k < 20);
  t.true(ticks.size > 1, 'different seeds give different timeouts');
});

test('a node that is not a voter never campaigns', (t) => {
  const joiner = new RaftNode({ id: 'z', persisted: emptyPersistedState(), random: new SeededRandom(1) });
  for (let i = 0; i < 100; i++) joiner.tick();
  t.is(joiner.currentRole, 'follower');
  t.false(joiner.ready().messages.length > 0);
});

test('a single-voter cluster elects itself and commits alone', (t) => {
  const c = new TestCluster(['solo']);
  c.tick(20);
  t.is(c.raft('solo').currentRole, 'leader');
  const r = c.raft('solo').propose(new Uint8Array([7]));
  c.stabilize();
  t.is(c.raft('solo').commitIndex, r.index);
});

test('malformed or misaddressed messages are refused with WB_PROTOCOL', (t) => {
  const node = new RaftNode({ id: 'a', persisted: emptyPersistedState(), random: new SeededRandom(1), bootstrapVoters: ['a'] });
  const err = t.throws(() => node.step(makeMessage({ type: 'app', from: 'b', to: 'x', term: 1 })));
  t.true(isWaterbearError(err, 'WB_PROTOCOL'));
  const err2 = t.throws(() => node.step({ ...makeMessage({ type: 'app', from: 'b', to: 'a', term: 1 }), term: -1 }));
  t.true(isWaterbearError(err2, 'WB_PROTOCOL'));
  const err3 = t.throws(() => node.step({ ...makeMessage({ type: 'app', from: 'b', to: 'a', term: 1 }), type: 'bogus' as 'app' }));
  t.true(isWaterbearError(err3, 'WB_PROTOCOL'));
  const data = new Uint8Array(0);
  const badEntries = [
    [{ index: 3, term: 1, type: 'normal', data }], // not right after the previous index 1
    [{ index: 2, term: 9, type: 'normal', data }], // term above the message's
    [{ index: 2, term: 1, type: 'weird', data }],
    [{ index: 2, term: 1, type: 'normal', data: 'text' }],
  ];
  for (const entries of badEntries) {
    const m = { ...makeMessage({ type: 'app', from: 'b', to: 'a', term: 2, index: 1, logTerm: 1 }), entries } as unknown as Message;
    const e = t.throws(() => node.step(m));
    t.true(isWaterbearError(e, 'WB_PROTOCOL'));
    t.not((e as { details?: { invariant?: boolean } }).details?.invariant, true, 'refused as bad input, not as an internal failure');
  }
  const e4 = t.throws(() => node.step(makeMessage({ type: 'snap', from: 'b', to: 'a', term: 2 })));
  t.true(isWaterbearError(e4, 'WB_PROTOCOL'));
  t.is(node.currentTerm, 1, 'nothing was changed by refused messages');
});
