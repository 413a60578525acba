/**
 * Validation of Raft messages received from peers (DESIGN.md rule 5: bad input gets a clear error).
 * RaftNode.step calls it first; a transport may call it right after decoding too.
 */
import { WaterbearError } from '../../../libos-host/errors.js';
import { MESSAGE_TYPES, type Message, type NodeId } from './raft-types.js';

function isNonNegativeInteger(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0;
}

/**
 * Checks that `m` is a well-formed message addressed to `self`: known type, sender, non-negative integer
 * fields, entries numbered right after `m.index` with terms in [m.logTerm, m.term], and a well-formed
 * snapshot on `snap`.
 * @throws WaterbearError WB_PROTOCOL naming the problem.
 */
export function validateRaftMessage(m: Message, self: NodeId): void {
  const bad = (why: string): never => {
    throw new WaterbearError('WB_PROTOCOL', `malformed raft message: ${why}`);
  };
  if (m === null || typeof m !== 'object') bad('not an object');
  if (!MESSAGE_TYPES.includes(m.type)) bad(`unknown type ${JSON.stringify(m.type)}`);
  if (m.to !== self) bad(`addressed to ${JSON.stringify(m.to)}, this node is ${self}`);
  if (typeof m.from !== 'string' || m.from.length === 0 || m.from === self) bad(`bad sender ${JSON.stringify(m.from)}`);
  for (const k of ['term', 'index', 'logTerm', 'commit', 'rejectHint'] as const) {
    if (!isNonNegativeInteger(m[k])) bad(`${k} must be a non-negative integer`);
  }
  if (!Array.isArray(m.entries)) bad('entries must be an array');
  let prevTerm = m.logTerm;
  m.entries.forEach((e, i) => {
    if (e === null || typeof e !== 'object') bad(`entry ${i} is not an object`);
    if (e.index !== m.index + 1 + i) bad(`entry ${i} has index ${String(e.index)}, expected ${m.index + 1 + i}`);
    if (!isNonNegativeInteger(e.term) || e.term < prevTerm || e.term > m.term) bad(`entry ${e.index} has term ${String(e.term)} outside [${prevTerm}, ${m.term}]`);
    if (e.type !== 'normal' && e.type !== 'conf') bad(`entry ${e.index} has unknown type ${JSON.stringify(e.type)}`);
    if (!(e.data instanceof Uint8Array)) bad(`entry ${e.index} data is not bytes`);
    prevTerm = e.term;
  });
  if (m.type === 'snap') {
    const s = m.snapshot;
    if (s === null || typeof s !== 'object' || s.meta === null || typeof s.meta !== 'object') bad('snap without snapshot');
    else if (!isNonNegativeInteger(s.meta.index) || !isNonNegativeInteger(s.meta.term) || s.meta.term > m.term) bad('snapshot index or term is invalid');
    else if (!(s.data instanceof Uint8Array)) bad('snapshot data is not bytes');
    else if (!Array.isArray(s.meta.membership?.voters) || !Array.isArray(s.meta.membership?.learners)) bad('snapshot membership is malformed');
  }
}
