import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import {
  ELECTION_TICKS,
  HEARTBEAT_TICKS,
  MAX_APPEND_ENTRIES,
  resolveRaftOptions,
  type RaftOptions,
} from '../../../replica/coord/raft/raft-config.js';
import { RaftNode } from '../../../replica/coord/raft/raft-node.js';
import { SeededRandom } from '../../../replica/coord/raft/raft-random.js';
import { emptyPersistedState } from '../../../replica/coord/raft/raft-types.js';

test('defaults are the named constants', (t) => {
  const o = resolveRaftOptions();
  t.is(o.electionTicks, ELECTION_TICKS);
  t.is(o.heartbeatTicks, HEARTBEAT_TICKS);
  t.is(o.maxAppendEntries, MAX_APPEND_ENTRIES);
  t.true(o.preVote);
  t.true(o.checkQuorum);
  t.true(Object.isFrozen(o));
});

test('invalid options are refused with WB_CONFIG_INVALID naming the option', (t) => {
  const cases: [unknown, RegExp][] = [
    [{ electionTicks: 0 }, /electionTicks must be an integer between 2 and 10000: got 0/],
    [{ electionTicks: 1.5 }, /electionTicks/],
    [{ heartbeatTicks: 10, electionTicks: 10 }, /heartbeatTicks must be less than electionTicks/],
    [{ preVote: 'yes' }, /preVote must be true or false/],
    [{ maxInflightAppends: -1 }, /maxInflightAppends/],
    [{ electionTick: 10 }, /unknown raft option "electionTick"/],
  ];
  for (const [opts, msg] of cases) {
    const err = t.throws(() => resolveRaftOptions(opts as RaftOptions), { message: msg });
    t.true(isWaterbearError(err, 'WB_CONFIG_INVALID'));
  }
});

test('unsafe test bugs cannot be switched on through options (config files, CLI flags)', (t) => {
  const fromConfig = JSON.parse('{"electionTicks": 10, "unsafeTestBugs": {"grantVoteTwice": true}}') as RaftOptions;
  const err = t.throws(() => resolveRaftOptions(fromConfig));
  t.true(isWaterbearError(err, 'WB_CONFIG_INVALID'));
  // And a node built from such options refuses to start.
  const err2 = t.throws(
    () => new RaftNode({ id: 'a', persisted: emptyPersistedState(), random: new SeededRandom(1), options: fromConfig }),
  );
  t.true(isWaterbearError(err2, 'WB_CONFIG_INVALID'));
});

test('a node id must be non-empty and bootstrap voters must include the node', (t) => {
  const base = { persisted: emptyPersistedState(), random: new SeededRandom(1) };
  t.true(isWaterbearError(t.throws(() => new RaftNode({ ...base, id: '' })), 'WB_CONFIG_INVALID'));
  t.true(isWaterbearError(t.throws(() => new RaftNode({ ...base, id: 'a', bootstrapVoters: ['b', 'c'] })), 'WB_CONFIG_INVALID'));
  t.true(isWaterbearError(t.throws(() => new RaftNode({ ...base, id: 'a', bootstrapVoters: ['a', 'a'] })), 'WB_CONFIG_INVALID'));
});

test('bootstrap writes the same first entry on every initial voter and is ignored on restart', (t) => {
  const voters = ['c', 'a', 'b'];
  const rds = voters.map((id) => new RaftNode({ id, persisted: emptyPersistedState(), random: new SeededRandom(1), bootstrapVoters: voters }).ready());
  for (const rd of rds) {
    t.deepEqual(rd.entries, rds[0].entries);
    t.deepEqual(rd.hardState, { term: 1, vote: '', commit: 1 });
  }
  const persisted = { hardState: { term: 5, vote: 'b', commit: 1 }, snapshot: emptyPersistedState().snapshot, entries: rds[0].entries };
  const restarted = new RaftNode({ id: 'a', persisted, random: new SeededRandom(1), bootstrapVoters: ['a', 'x', 'y'] });
  t.deepEqual(restarted.currentMembership.voters, ['a', 'b', 'c']);
  t.is(restarted.currentTerm, 5);
});

test('an inconsistent persisted state is refused with WB_STORE_IO', (t) => {
  const e = emptyPersistedState();
  const gap = { ...e, hardState: { term: 1, vote: '', commit: 0 }, entries: [{ index: 2, term: 1, type: 'normal' as const, data: new Uint8Array() }] };
  t.true(isWaterbearError(t.throws(() => new RaftNode({ id: 'a', persisted: gap, random: new SeededRandom(1) })), 'WB_STORE_IO'));
  const commitBeyond = { ...e, hardState: { term: 1, vote: '', commit: 3 } };
  t.true(isWaterbearError(t.throws(() => new RaftNode({ id: 'a', persisted: commitBeyond, random: new SeededRandom(1) })), 'WB_STORE_IO'));
});
