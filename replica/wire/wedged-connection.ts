/**
 * A gRPC connection on which every request has timed out for this long (at least
 * WEDGED_MIN_TIMEOUTS of them, nothing answered in between) is replaced by a new one. A connection
 * can stay open and answer HTTP/2 pings (so gRPC's own keepalive is satisfied) while carrying no
 * data: in a 10-minute chaos soak, bits flipped in the HTTP/2 framing left a replica's connection
 * to the witness like that for 135 s, its lease lost and its proposals unanswered, until the
 * witness restarted.
 */
export const WEDGED_CONNECTION_MS = 2_000;
export const WEDGED_MIN_TIMEOUTS = 2;

/**
 * Channel option for a client that must be able to replace its connection: grpc-js shares
 * subchannels between clients of the same address by default, so a new client would otherwise
 * be handed the same wedged connection.
 */
export const OWN_SUBCHANNEL_OPTIONS = { 'grpc.use_local_subchannel_pool': 1 } as const;

/** Tells when a connection's requests have only timed out for long enough to replace it. */
export class WedgeDetector {
  private timeouts = 0;
  private sinceMs = 0;

  constructor(private readonly nowMs: () => number = () => performance.now()) {}

  /** A request was answered (any answer, an error status too: the connection carries data). */
  answered(): void { this.timeouts = 0; }

  /**
   * A request sent at `sentAtMs` timed out. Returns null, or, when the connection should be
   * replaced now, how many requests timed out over how long (the count then starts again); the
   * caller closes its client and opens a new one.
   */
  timedOut(sentAtMs: number): { timeouts: number; ms: number } | null {
    if (this.timeouts++ === 0) this.sinceMs = sentAtMs;
    const ms = this.nowMs() - this.sinceMs;
    if (this.timeouts < WEDGED_MIN_TIMEOUTS || ms < WEDGED_CONNECTION_MS) return null;
    const seen = { timeouts: this.timeouts, ms: Math.round(ms) };
    this.timeouts = 0;
    return seen;
  }
}
