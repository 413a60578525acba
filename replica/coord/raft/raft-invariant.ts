import { WaterbearError } from '../../../libos-host/errors.js';

/**
 * Asserts an internal Raft invariant. Stays on in production (STYLE.md: invariant checks are cheap
 * compared with a corrupt replica). A failure is a bug in this code or a broken storage/driver contract.
 * @throws WaterbearError WB_PROTOCOL with `details.invariant = true`.
 */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) {
    throw new WaterbearError('WB_PROTOCOL', `raft invariant violated: ${message}`, { details: { invariant: true } });
  }
}
