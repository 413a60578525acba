/**
 * A deterministic stream of Readies exercising every storage path: appends, conflicting rewrites,
 * hard-state changes, installed snapshots and local compactions. Shared by the LMDB tests and the
 * child process they kill.
 */
import { encodeConfEntry, makeMembership } from '../../../../replica/coord/raft/raft-membership.js';
import { SeededRandom } from '../../../../replica/coord/raft/raft-random.js';
import { applyReadyToState, type ReadyToPersist } from '../../../../replica/coord/raft/raft-storage.js';
import { emptyPersistedState, type Entry, type PersistedState } from '../../../../replica/coord/raft/raft-types.js';

function randomBytes(rng: SeededRandom, max: number): Uint8Array {
  const out = new Uint8Array(rng.nextInt(max + 1));
  for (let i = 0; i < out.length; i++) out[i] = rng.nextInt(256);
  return out;
}

/** Yields `count` Readies; each leaves the persisted state consistent (commit within the log). */
export function* readyWorkload(seed: number, count: number): Generator<ReadyToPersist> {
  const rng = new SeededRandom(seed);
  let state: PersistedState = emptyPersistedState();
  for (let i = 0; i < count; i++) {
    const hs = state.hardState;
    const snapIndex = state.snapshot.meta.index;
    const last = snapIndex + state.entries.length;
    const roll = rng.nextFloat();
    let rd: ReadyToPersist;
    if (roll < 0.55 || last === 0) {
      // Append, sometimes rewriting an uncommitted suffix, usually in a higher term.
      const term = rng.chance(0.2) ? hs.term + 1 : Math.max(hs.term, 1);
      const from = rng.chance(0.2) && last > hs.commit ? hs.commit + 1 + rng.nextInt(last - hs.commit) : last + 1;
      const entries: Entry[] = [];
      for (let k = 0; k < 1 + rng.nextInt(5); k++) {
        entries.push(
          rng.chance(0.1)
            ? { index: from + k, term, type: 'conf', data: encodeConfEntry({ change: null, membership: makeMembership(['n1', `n${2 + rng.nextInt(4)}`]) }) }
            : { index: from + k, term, type: 'normal', data: randomBytes(rng, 300) },
        );
      }
      const newLast = from + entries.length - 1;
      const commit = rng.chance(0.5) ? hs.commit + rng.nextInt(newLast - hs.commit + 1) : hs.commit;
      rd = { hardState: { term, vote: rng.chance(0.5) ? `n${rng.nextInt(5)}` : '', commit }, entries, snapshot: null, compacted: null };
    } else if (roll < 0.7) {
      rd = { hardState: { term: hs.term + 1, vote: `n${rng.nextInt(5)}`, commit: hs.commit }, entries: [], snapshot: null, compacted: null };
    } else if (roll < 0.85 && hs.commit > snapIndex) {
      const index = snapIndex + 1 + rng.nextInt(hs.commit - snapIndex);
      const term = state.entries[index - snapIndex - 1].term;
      const compacted = { meta: { index, term, membership: { voters: ['n1', 'n2'], learners: [] } }, data: randomBytes(rng, 2000) };
      rd = { hardState: null, entries: [], snapshot: null, compacted };
    } else {
      // A snapshot from a leader, beyond our log, followed by a few entries.
      const index = last + 1 + rng.nextInt(20);
      const term = Math.max(hs.term, 1);
      const snapshot = { meta: { index, term, membership: { voters: ['n1', 'n2', 'n3'], learners: ['n4'] } }, data: randomBytes(rng, 2000) };
      const entries: Entry[] = rng.chance(0.5) ? [{ index: index + 1, term, type: 'normal', data: randomBytes(rng, 50) }] : [];
      rd = { hardState: { term, vote: hs.vote, commit: index }, entries, snapshot, compacted: null };
    }
    state = applyReadyToState(state, rd);
    yield rd;
  }
}

/** The persisted states after 0, 1, 2, … Readies of the workload. */
export function* workloadStates(seed: number, count: number): Generator<PersistedState> {
  let state = emptyPersistedState();
  yield state;
  for (const rd of readyWorkload(seed, count)) {
    state = applyReadyToState(state, rd);
    yield state;
  }
}

/** A compact, exact fingerprint of a persisted state (for finding which prefix a recovered store equals). */
export function stateFingerprint(s: PersistedState): string {
  const h = (b: Uint8Array): string => {
    let x = 0x811c9dc5;
    for (const v of b) x = Math.imul(x ^ v, 0x01000193) >>> 0;
    return `${b.length}:${x.toString(16)}`;
  };
  const m = s.snapshot.meta;
  return JSON.stringify([
    s.hardState,
    [m.index, m.term, m.membership.voters, m.membership.learners, h(s.snapshot.data)],
    s.entries.map((e) => [e.index, e.term, e.type, h(e.data)]),
  ]);
}
