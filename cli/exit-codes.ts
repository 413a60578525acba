/**
 * A member whose coordinator stopped for good (its Raft store failed, e.g. a full disk) exits with
 * this code (EX_TEMPFAIL of sysexits.h: try again later): its supervisor (`waterbear up`, systemd's
 * Restart=always) starts it again, and it rejoins once the fault is fixed.
 */
export const COORDINATOR_FAILED_EXIT_CODE = 75;

/** What a member prints before it exits with COORDINATOR_FAILED_EXIT_CODE. */
export function coordinatorFailedMessage(err: Error): string {
  return `its coordinator member stopped (${err.message}); exiting so that it is restarted once the fault is fixed`;
}

/**
 * Exit code for a guest trap (128 + SIGABRT, as a crashed native process): in _start or later
 * (run-to-exit.ts), and in the module's start function, which traps while the guest is launched.
 */
export const TRAP_EXIT_CODE = 134;

/** What the CLI prints for a guest trap (a WB_GUEST_TRAP: the trap and the guest function), wherever it trapped. */
export function guestTrapMessage(err: Error): string {
  return `waterbear: ${err.message}\n`;
}
