/**
 * Membership arithmetic and the encoding of membership-change entries.
 *
 * A `conf` entry carries the change AND the complete resulting membership, so a node learns the whole
 * configuration from the latest conf entry in its log. A node uses the latest membership in its log,
 * committed or not (Raft thesis §4.1); truncating that entry reverts to the previous one.
 */
import { WaterbearError } from '../../../libos-host/errors.js';
import type { ConfChange, ConfChangeType, Membership, NodeId } from './raft-types.js';

/** Version of the conf-entry encoding; a reader refuses versions it does not know. */
export const CONF_ENTRY_VERSION = 1;

const CONF_CHANGE_TYPES: readonly ConfChangeType[] = ['addVoter', 'addLearner', 'removeNode'];

export function isVoter(m: Membership, id: NodeId): boolean {
  return m.voters.includes(id);
}

export function isLearner(m: Membership, id: NodeId): boolean {
  return m.learners.includes(id);
}

export function isMember(m: Membership, id: NodeId): boolean {
  return isVoter(m, id) || isLearner(m, id);
}

/** Voters then learners. */
export function allMembers(m: Membership): NodeId[] {
  return [...m.voters, ...m.learners];
}

/** Votes (or acknowledgements) needed out of `voterCount` voters: a strict majority. */
export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/** A membership with both lists sorted and frozen; throws WB_CONFIG_INVALID on duplicates or overlap. */
export function makeMembership(voters: readonly NodeId[], learners: readonly NodeId[] = []): Membership {
  const v = [...voters].sort();
  const l = [...learners].sort();
  const seen = new Set<NodeId>();
  for (const id of [...v, ...l]) {
    if (typeof id !== 'string' || id.length === 0) {
      throw new WaterbearError('WB_CONFIG_INVALID', `raft member ids must be non-empty strings: got ${JSON.stringify(id)}`);
    }
    if (seen.has(id)) throw new WaterbearError('WB_CONFIG_INVALID', `raft member ${id} is listed twice in the membership`);
    seen.add(id);
  }
  return Object.freeze({ voters: Object.freeze(v), learners: Object.freeze(l) });
}

export function membershipEquals(a: Membership, b: Membership): boolean {
  return (
    a.voters.length === b.voters.length &&
    a.learners.length === b.learners.length &&
    a.voters.every((id, i) => id === b.voters[i]) &&
    a.learners.every((id, i) => id === b.learners[i])
  );
}

/**
 * The membership after one change.
 * @throws WaterbearError WB_CONFIG_INVALID when the change does nothing (adding a voter that already is one,
 *   removing a non-member) or would leave no voter.
 */
export function applyConfChange(m: Membership, cc: ConfChange): Membership {
  validateConfChange(cc);
  const { node } = cc;
  switch (cc.type) {
    case 'addVoter':
      if (isVoter(m, node)) throw new WaterbearError('WB_CONFIG_INVALID', `${node} is already a voter`);
      return makeMembership([...m.voters, node], m.learners.filter((id) => id !== node));
    case 'addLearner':
      if (isMember(m, node)) {
        throw new WaterbearError('WB_CONFIG_INVALID', `${node} is already a member; demoting a voter to learner is not supported, remove it first`);
      }
      return makeMembership(m.voters, [...m.learners, node]);
    case 'removeNode': {
      if (!isMember(m, node)) throw new WaterbearError('WB_CONFIG_INVALID', `${node} is not a member`);
      const voters = m.voters.filter((id) => id !== node);
      if (voters.length === 0) throw new WaterbearError('WB_CONFIG_INVALID', `removing ${node} would leave the cluster without a voter`);
      return makeMembership(voters, m.learners.filter((id) => id !== node));
    }
  }
}

/** @throws WaterbearError WB_CONFIG_INVALID when `cc` is not a well-formed ConfChange. */
export function validateConfChange(cc: ConfChange): void {
  if (cc === null || typeof cc !== 'object' || !CONF_CHANGE_TYPES.includes(cc.type)) {
    throw new WaterbearError('WB_CONFIG_INVALID', `membership change type must be one of ${CONF_CHANGE_TYPES.join(', ')}: got ${JSON.stringify(cc?.type)}`);
  }
  if (typeof cc.node !== 'string' || cc.node.length === 0) {
    throw new WaterbearError('WB_CONFIG_INVALID', `membership change node must be a non-empty id: got ${JSON.stringify(cc.node)}`);
  }
}

/** The payload of a conf entry. */
export interface ConfEntryPayload {
  /** The change that produced `membership`; null for the bootstrap entry of a new cluster. */
  readonly change: ConfChange | null;
  readonly membership: Membership;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a conf entry payload (versioned JSON). */
export function encodeConfEntry(payload: ConfEntryPayload): Uint8Array {
  return encoder.encode(
    JSON.stringify({
      v: CONF_ENTRY_VERSION,
      change: payload.change === null ? null : { type: payload.change.type, node: payload.change.node },
      voters: payload.membership.voters,
      learners: payload.membership.learners,
    }),
  );
}

/** Decodes a conf entry payload. @throws WaterbearError WB_PROTOCOL when malformed or of an unknown version. */
export function decodeConfEntry(data: Uint8Array): ConfEntryPayload {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(data));
  } catch (cause) {
    throw new WaterbearError('WB_PROTOCOL', 'raft membership entry is not valid JSON', { cause });
  }
  const r = raw as { v?: unknown; change?: { type?: unknown; node?: unknown }; voters?: unknown; learners?: unknown };
  if (r === null || typeof r !== 'object' || r.v !== CONF_ENTRY_VERSION) {
    throw new WaterbearError('WB_PROTOCOL', `raft membership entry has unsupported version ${JSON.stringify(r?.v)} (this build reads ${CONF_ENTRY_VERSION})`);
  }
  if (!Array.isArray(r.voters) || !Array.isArray(r.learners) || r.change === undefined) {
    throw new WaterbearError('WB_PROTOCOL', 'raft membership entry lacks voters, learners or change');
  }
  try {
    let change: ConfChange | null = null;
    if (r.change !== null) {
      change = { type: r.change.type as ConfChangeType, node: r.change.node as NodeId };
      validateConfChange(change);
    }
    return { change, membership: makeMembership(r.voters as NodeId[], r.learners as NodeId[]) };
  } catch (cause) {
    throw new WaterbearError('WB_PROTOCOL', 'raft membership entry is malformed', { cause });
  }
}
