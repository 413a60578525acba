/**
 * Deliberate protocol bugs, for proving that the simulation's checker catches a broken build
 * (STYLE.md: "A checker is trusted only after it has caught a deliberately broken build").
 *
 * They can only be switched on by passing `unsafeTestBugs` to the RaftNode constructor. They are not
 * Raft options: `resolveRaftOptions` rejects the key, so no config file or CLI flag can reach them.
 */
export interface UnsafeRaftTestBugs {
  /** The vote is never written to stable storage: after a crash the node may vote again in the same term. */
  readonly skipVotePersistence?: boolean;
  /** A voter grants its vote to every candidate of the current term, not just the first one. */
  readonly grantVoteTwice?: boolean;
  /** The leader commits everything it has appended without waiting for a quorum. */
  readonly commitWithoutQuorum?: boolean;
  /** Voters do not check that the candidate's log is at least as up-to-date as theirs (§5.4.1). */
  readonly skipLogUpToDateCheck?: boolean;
  /** ReadIndex answers at once with the leader's commit index, without confirming leadership by a heartbeat round. */
  readonly readIndexWithoutHeartbeat?: boolean;
  /** The leader commits entries of earlier terms by counting replicas (the Figure 8 bug, §5.4.2). */
  readonly commitPreviousTermByCounting?: boolean;
}

export const UNSAFE_TEST_BUG_NAMES = [
  'skipVotePersistence',
  'grantVoteTwice',
  'commitWithoutQuorum',
  'skipLogUpToDateCheck',
  'readIndexWithoutHeartbeat',
  'commitPreviousTermByCounting',
] as const satisfies readonly (keyof UnsafeRaftTestBugs)[];

export type UnsafeTestBugName = (typeof UNSAFE_TEST_BUG_NAMES)[number];
