/**
 * A member whose coordinator stopped for good (its Raft store failed, e.g. a full disk) exits with
 * this code (EX_TEMPFAIL of sysexits.h: try again later): its supervisor (`waterbear up`, systemd's
 * Restart=always) starts it again, and it rejoins once the fault is fixed.
 */
export const COORDINATOR_FAILED_EXIT_CODE = 75;
