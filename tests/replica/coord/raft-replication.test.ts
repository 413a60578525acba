import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import type { Message } from '../../../replica/coord/raft/raft-types.js';
import { bytes, TestCluster } from './helpers/raft-test-cluster.js';

test('the leader commits an entry once a quorum holds it, and every node applies it once, in order', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('c');
  const r1 = c.raft('a').propose(bytes('x'));
  const r2 = c.raft('a').propose(bytes('y'));
  c.stabilize();
  t.is(c.raft('a').commitIndex, r2.index, 'a and b are a quorum');
  t.true(r1.index < r2.index);
  t.deepEqual(c.appliedValues('a'), ['x', 'y']);
  t.deepEqual(c.appliedValues('b'), ['x', 'y']);
  t.deepEqual(c.appliedValues('c'), []);
  c.heal();
  c.tick(2);
  t.deepEqual(c.appliedValues('c'), ['x', 'y']);
  // Each entry was handed out exactly once per node.
  const handed = c.node('b').readies.flatMap((rd) => rd.committedEntries.map((e) => e.index));
  t.deepEqual(handed, [...new Set(handed)].sort((x, y) => x - y));
});

test('an entry on only a minority is not committed', (t) => {
  const c = new TestCluster(['a', 'b', 'c', 'd', 'e']);
  c.elect('a');
  const before = c.raft('a').commitIndex;
  c.isolate('c');
  c.isolate('d');
  c.isolate('e');
  c.raft('a').propose(bytes('x'));
  c.stabilize();
  t.is(c.raft('a').commitIndex, before);
  t.deepEqual(c.appliedValues('a'), []);
});

test('proposals to a follower fail with WB_NOT_LEADER naming the leader', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  const err = t.throws(() => c.raft('b').propose(bytes('x')));
  t.true(isWaterbearError(err, 'WB_NOT_LEADER'));
  t.is((err as { details?: { leader?: string } }).details?.leader, 'a');
});

test('entries and hard state are in the Ready before the messages that depend on them', (t) => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.raft('a').propose(bytes('x'));
  const rd = c.raft('a').ready();
  t.is(rd.entries.length, 1);
  t.true(rd.messages.some((m) => m.type === 'app' && m.entries.length === 1));
});

test('fast backtracking repairs a long conflicting suffix in a few round trips', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { checkQuorum: false } });
  c.elect('a');
  // a, isolated but still believing it leads, appends 60 entries nobody else gets.
  c.isolate('a');
  for (let i = 0; i < 60; i++) c.raft('a').propose(bytes(`stale${i}`));
  c.stabilize();
  // b and c elect a new leader and commit 60 other entries.
  c.tick(40, ['b', 'c']);
  const [leader] = c.leaders().filter((id) => id !== 'a');
  t.truthy(leader);
  for (let i = 0; i < 60; i++) c.raft(leader).propose(bytes(`new${i}`));
  c.stabilize();
  // Hand over so that the final leader starts probing `a` from the end of its 60-entry log.
  const other = leader === 'b' ? 'c' : 'b';
  t.true(c.raft(leader).transferLeadership(other));
  c.stabilize();
  t.is(c.raft(other).currentRole, 'leader');
  c.heal();
  c.tick(3);
  t.deepEqual(c.leaders(), [other]);
  t.deepEqual(c.appliedValues('a'), c.appliedValues(other));
  t.is(c.appliedValues('a').length, 60);
  const rejections = c.sent.filter((m) => m.type === 'appResp' && m.from === 'a' && m.reject).length;
  t.true(rejections >= 1 && rejections <= 3, `a rejected ${rejections} appends; one-by-one backtracking would need ~60`);
});

test('lost, duplicated and reordered appends still converge', (t) => {
  const c = new TestCluster(['a', 'b', 'c'], { options: { maxAppendEntries: 2 } });
  c.elect('a');
  let n = 0;
  c.dropIf = (m: Message) => m.type === 'app' && ++n % 3 === 0;
  for (let i = 0; i < 30; i++) c.raft('a').propose(bytes(`v${i}`));
  c.stabilize();
  // Duplicate and reverse everything in flight for a while.
  for (let round = 0; round < 10; round++) {
    c.raft('a').tick();
    c.processReadies();
    c.queue = [...c.queue, ...c.queue].reverse();
    c.stabilize();
  }
  c.heal();
  c.tick(5);
  const want = Array.from({ length: 30 }, (_, i) => `v${i}`);
  for (const id of ['a', 'b', 'c']) t.deepEqual(c.appliedValues(id), want);
});

/**
 * Figure 8 of the Raft paper, scripted on 5 nodes. s1 (term 4) holds entry 3 from term 2 on a majority,
 * but not its own term-4 entry; s5, holding entry 3 from term 3, can still be elected and overwrite it.
 * Counting replicas for an earlier-term entry would have "committed" something that gets lost.
 */
function figure8(countEarlierTerms: boolean): { s1Applied3: number | undefined; othersApplied3: (number | undefined)[] } {
  const c = new TestCluster(['s1', 's2', 's3', 's4', 's5'], {
    options: { preVote: false, checkQuorum: false, maxAppendEntries: 1 },
    ...(countEarlierTerms ? { bugs: { commitPreviousTermByCounting: true } } : {}),
  });
  const campaignUntilLeader = (id: string): void => {
    for (let i = 0; i < 5 && c.raft(id).currentRole !== 'leader'; i++) c.elect(id);
    if (c.raft(id).currentRole !== 'leader') throw new Error(`${id} did not win`);
  };
  // (a) s1 leads term 2; entry 3 (term 2) reaches only s2.
  campaignUntilLeader('s1');
  c.dropIf = (m) => m.from === 's1' && m.to !== 's2';
  c.raft('s1').propose(bytes('X'));
  c.stabilize();
  c.crash('s1');
  // (b) s5 wins term 3 with s3 and s4, appends its no-op at index 3 (term 3), tells nobody, crashes.
  c.heal();
  c.dropIf = (m) => m.from === 's5' && (m.type === 'app' || m.type === 'heartbeat');
  campaignUntilLeader('s5');
  c.crash('s5');
  // (c) s1 restarts and wins term 4; entry 3 (term 2) reaches s3 and s4, its term-4 entry reaches no one.
  c.heal();
  c.restart('s1');
  c.dropIf = (m) => m.type === 'app' && m.entries.some((e) => e.index >= 4) && (c.node(m.to).raft?.lastIndex ?? 0) >= 3;
  campaignUntilLeader('s1');
  c.stabilize();
  const s1Applied3 = c.node('s1').applied.get(3)?.term;
  c.crash('s1');
  // (d) s5 restarts and wins (its last term 3 beats term 2), overwriting entry 3 everywhere.
  c.heal();
  c.restart('s5');
  campaignUntilLeader('s5');
  c.tick(3, ['s2', 's3', 's4', 's5']);
  return { s1Applied3, othersApplied3: ['s2', 's3', 's4', 's5'].map((id) => c.node(id).applied.get(3)?.term) };
}

test('an entry of an earlier term is never committed by counting replicas (Figure 8)', (t) => {
  const ok = figure8(false);
  t.is(ok.s1Applied3, undefined, 's1 must not commit entry 3 from term 2');
  t.deepEqual(ok.othersApplied3, [3, 3, 3, 3], 'the surviving history has entry 3 from term 3');
});

test('the Figure 8 schedule loses a committed entry when the commit rule is broken (unsafe test bug)', (t) => {
  const bad = figure8(true);
  t.is(bad.s1Applied3, 2, 's1 applied entry 3 from term 2');
  t.deepEqual(bad.othersApplied3, [3, 3, 3, 3], 'the others applied a different entry 3: state machine safety is violated');
});
