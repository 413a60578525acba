import type { CliIo } from './io.js';

/**
 * allowPlaintext lets replication and coordination run unencrypted off loopback: say so at every
 * start, on stderr, naming each such link (anyone on the path can read the guest's memory).
 */
export function warnPlaintext(io: CliIo, who: string, links: readonly string[]): void {
  if (links.length === 0) return;
  io.err(`waterbear: WARNING: ${who} sends unencrypted traffic off loopback (allowPlaintext) to ${links.join(', ')}: ` +
    'checkpoints carry the guest\'s whole memory; configure tls to encrypt them\n');
}
