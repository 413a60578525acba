import type { ClusterState } from './model.js';
import { count } from './ui/text.js';

/** What a health endpoint answers: 200 or 503, and a JSON body saying why. */
export interface HealthAnswer {
  status: 200 | 503;
  body: { ok: boolean; replica: string | null; role: string | null; view: number; primary: string | null; protection: string; reason: string; lagEpochs?: number | null; lagSeconds?: number | null };
}

/** Where the answer is given: a replica's dashboard (self, and its role read directly) or `waterbear dashboard` (self null). */
export interface HealthSubject {
  self: string | null;
  localRole: string | null;
  /** The local primary has unbound the service address (lease lost; a backup may be taking over). */
  localParked?: boolean;
}

function answer(ok: boolean, c: ClusterState, s: HealthSubject, reason: string, more: Partial<HealthAnswer['body']> = {}): HealthAnswer {
  return { status: ok ? 200 : 503, body: { ok, replica: s.self, role: s.localRole, view: c.view, primary: c.primary, protection: c.protection, reason, ...more } };
}

/**
 * /health/primary: 200 only on the primary (for a load balancer in front of the service address),
 * and not while it has parked the service address.
 * On `waterbear dashboard`: 200 when some replica answers as primary.
 */
export function primaryHealth(c: ClusterState, s: HealthSubject): HealthAnswer {
  if (s.self === null) return answer(c.primary !== null, c, s, c.primary !== null ? `${c.primary} is primary of view ${c.view}` : 'no replica answers as primary');
  if (s.localRole === 'primary' && s.localParked === true) {
    return answer(false, c, s, `${s.self} is primary but has lost its coordinator lease and freed the service address (a backup may be taking over)`);
  }
  if (s.localRole === 'primary') return answer(true, c, s, `${s.self} is primary`);
  return answer(false, c, s, `${s.self} is ${s.localRole ?? 'unknown'}, not primary${c.primary !== null ? `; the primary is ${c.primary}` : ''}`);
}

/**
 * /health/in-sync: on a backup, 200 only when it is a backup of the current view and its lag is
 * within the bound (epochs and time, as acknowledged to the primary); on the primary, 200 only
 * when it is PROTECTED; on `waterbear dashboard`, 200 when the cluster is PROTECTED.
 * `bounds` override the dashboard's configured bound (query parameters maxLagMs, maxLagEpochs).
 */
export function inSyncHealth(c: ClusterState, s: HealthSubject, bounds: { maxLagMs: number; maxLagEpochs: number }): HealthAnswer {
  if (s.self === null || s.localRole === 'primary') {
    const ok = c.protection === 'PROTECTED';
    return answer(ok, c, s, ok ? `PROTECTED: backups [${c.backups.join(', ')}] acknowledge every checkpoint` : `${c.protection}`);
  }
  const m = c.members.find((x) => x.id === s.self);
  if (m === undefined || c.primary === null) return answer(false, c, s, 'no primary answers: cannot tell how far behind this replica is');
  const lag = { lagEpochs: m.lagEpochs, lagSeconds: m.lagSeconds };
  if (!m.inView) return answer(false, c, s, `${s.self} is not a backup of view ${c.view} (role ${s.localRole ?? m.role})`, lag);
  if (m.lagEpochs === null || m.lagSeconds === null) return answer(false, c, s, `primary ${c.primary} reports no replication link to ${s.self}`, lag);
  if (m.lagEpochs > bounds.maxLagEpochs) return answer(false, c, s, `${count(m.lagEpochs, 'epoch')} behind (bound ${bounds.maxLagEpochs})`, lag);
  if (m.lagSeconds * 1000 > bounds.maxLagMs) return answer(false, c, s, `${Math.round(m.lagSeconds * 1000)} ms behind (bound ${bounds.maxLagMs} ms)`, lag);
  return answer(true, c, s, `in sync with primary ${c.primary}: ${count(m.lagEpochs, 'epoch')}, ${Math.round(m.lagSeconds * 1000)} ms behind`, lag);
}
