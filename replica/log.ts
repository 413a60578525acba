import pino, { type Logger } from 'pino';

export type { Logger };

/** Default log level: quiet unless something needs an operator's attention. */
export const DEFAULT_LOG_LEVEL = 'warn';

/** A structured logger on stderr; level from WATERBEAR_LOG_LEVEL (trace … fatal, silent). */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ name, level: process.env.WATERBEAR_LOG_LEVEL ?? DEFAULT_LOG_LEVEL, base: { pid: process.pid, ...bindings } }, pino.destination(2));
}

/** A repeating warning is logged at most this often; the repeats in between go to debug. */
export const REPEATED_WARNING_INTERVAL_MS = 5_000;

/**
 * One warning that may repeat many times a second (a proposal retried at every tick while the
 * coordinator is down): the first is logged at warn, repeats within REPEATED_WARNING_INTERVAL_MS
 * at debug, and the next warn says how many were folded (`repeats`). Quiet logs stay readable
 * through an outage without hiding that it goes on.
 */
export class RepeatedWarning {
  private lastWarnMs = -Infinity;
  private folded = 0;

  constructor(private readonly log: Logger, private readonly msg: string, private readonly nowMs: () => number, private readonly intervalMs = REPEATED_WARNING_INTERVAL_MS) {}

  warn(fields: Record<string, unknown>): void {
    const now = this.nowMs();
    const sinceMs = now - this.lastWarnMs;
    // Negative when the clock stepped back (chaos clock faults): warn rather than stay silent.
    if (sinceMs >= 0 && sinceMs < this.intervalMs) {
      this.folded++;
      this.log.debug(fields, this.msg);
      return;
    }
    this.log.warn(this.folded > 0 ? { ...fields, repeats: this.folded } : fields, this.msg);
    this.lastWarnMs = now;
    this.folded = 0;
  }
}

/** How many keys a WarningOncePerKey remembers; past that it forgets them all (each may warn once more). */
export const MAX_WARNED_KEYS = 256;

/**
 * A warning logged once per key — e.g. once per peer that speaks another protocol version, which
 * reconnects every heartbeat interval: the first time at warn, repeats at debug.
 */
export class WarningOncePerKey {
  private readonly warned = new Set<string>();

  constructor(private readonly log: Logger, private readonly msg: string) {}

  warn(key: string, fields: Record<string, unknown>): void {
    if (this.warned.has(key)) {
      this.log.debug(fields, this.msg);
      return;
    }
    if (this.warned.size >= MAX_WARNED_KEYS) this.warned.clear();
    this.warned.add(key);
    this.log.warn(fields, this.msg);
  }
}

/**
 * A RepeatedWarning per key — e.g. per peer and kind of corrupt message, which may come again
 * and again (a peer resends every heartbeat interval) or again after days (a flaky NIC): one
 * warning per key and interval, the repeats at debug, counted in the next warning. Remembers at
 * most MAX_WARNED_KEYS keys; past that it forgets them all.
 */
export class RepeatedWarningPerKey {
  private readonly warnings = new Map<string, RepeatedWarning>();

  constructor(private readonly log: Logger, private readonly msg: string, private readonly nowMs: () => number, private readonly intervalMs = REPEATED_WARNING_INTERVAL_MS) {}

  warn(key: string, fields: Record<string, unknown>): void {
    let w = this.warnings.get(key);
    if (w === undefined) {
      if (this.warnings.size >= MAX_WARNED_KEYS) this.warnings.clear();
      w = new RepeatedWarning(this.log, this.msg, this.nowMs, this.intervalMs);
      this.warnings.set(key, w);
    }
    w.warn(fields);
  }
}
