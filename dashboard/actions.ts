import { WaterbearError, type ErrorCode } from '../libos-host/errors.js';
import type { ClusterConfig } from '../replica/config/cluster-config.js';
import type { ReplicaAdmin } from '../replica/node/replica-node.js';
import type { ClusterMonitor } from './cluster-monitor.js';
import type { ActionName } from './model.js';

/** How long a forwarded action may take (a switchover waits up to 10 s for acknowledgements). */
export const ACTION_FORWARD_TIMEOUT_MS = 20_000;
/** Header marking a request forwarded by another dashboard: it is never forwarded again. */
export const FORWARDED_HEADER = 'x-waterbear-forwarded';

/** Validated arguments of an action. */
export type ActionArgs = { target?: string; replica?: string };

/** Runs operator actions; throws WaterbearError (details.httpStatus when it came from another dashboard). */
export interface ActionRunner {
  run(name: ActionName, args: ActionArgs, request: { authorization: string; forwarded: boolean }): Promise<Record<string, unknown>>;
}

/** HTTP status of an action's error code. */
export function httpStatusOf(code: ErrorCode | string): number {
  switch (code) {
    case 'WB_UNAUTHORIZED': return 401;
    case 'WB_ADMIN_DISABLED': case 'WB_PERMISSION': return 403;
    case 'WB_BAD_REQUEST': case 'WB_CONFIG_INVALID': return 400;
    case 'WB_NOT_LEADER': case 'WB_VIEW_CONFLICT': case 'WB_STALE_VIEW': return 409;
    case 'WB_TIMEOUT': case 'WB_COORD_UNAVAILABLE': return 503;
    default: return 500;
  }
}

/** Check an action's JSON body against the cluster file. Throws WB_BAD_REQUEST. */
export function validateActionArgs(name: ActionName, body: unknown, config: ClusterConfig): ActionArgs {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b !== 'object' || Array.isArray(b)) throw new WaterbearError('WB_BAD_REQUEST', 'the body must be a JSON object');
  const replicaField = (field: 'target' | 'replica'): string => {
    const v = b[field];
    const ids = config.replicas.map((r) => r.id);
    if (typeof v !== 'string' || !ids.includes(v)) {
      throw new WaterbearError('WB_BAD_REQUEST', `${name} needs "${field}": one of the cluster's replicas (${ids.join(', ')}): got ${v === undefined ? 'none' : JSON.stringify(v)}`);
    }
    return v;
  };
  switch (name) {
    case 'checkpoint': return {};
    case 'switchover': return { target: replicaField('target') };
    case 'add-backup': case 'remove-backup': return { replica: replicaField('replica') };
  }
}

/**
 * Carries out actions on the primary: directly when this process is the primary replica,
 * otherwise by forwarding the request (with the caller's token) to the primary's dashboard.
 */
export class ClusterActions implements ActionRunner {
  constructor(private readonly o: { config: ClusterConfig; monitor: ClusterMonitor; local: (ReplicaAdmin & { readonly role: string; readonly self: string }) | null }) {}

  async run(name: ActionName, args: ActionArgs, request: { authorization: string; forwarded: boolean }): Promise<Record<string, unknown>> {
    const local = this.o.local;
    if (local !== null && local.role === 'primary') {
      switch (name) {
        case 'checkpoint': return { replica: local.self, ...(await local.triggerCheckpoint()) };
        case 'switchover': return { replica: local.self, ...(await local.switchover(args.target!)) };
        case 'add-backup': return { replica: local.self, ...(await local.addBackup(args.replica!)) };
        case 'remove-backup': return { replica: local.self, ...(await local.removeBackup(args.replica!)) };
      }
    }
    if (request.forwarded) {
      throw new WaterbearError('WB_NOT_LEADER', `${local?.self ?? 'this dashboard'} is not the primary (the request was forwarded here as if it were); try again`);
    }
    const primary = this.o.monitor.state().primary;
    if (primary === null) throw new WaterbearError('WB_NOT_LEADER', 'no replica answers as primary: wait for a primary, then try again');
    const dashboard = this.o.config.replicas.find((r) => r.id === primary)?.dashboard ?? null;
    if (dashboard === null) {
      throw new WaterbearError('WB_NOT_LEADER', `the primary ${primary} has no dashboard address in the cluster file: add "dashboard: HOST:PORT" to it to run actions from here`);
    }
    let res: Response;
    try {
      res = await fetch(`http://${dashboard}/api/actions/${name}`, {
        method: 'POST',
        headers: { authorization: request.authorization, 'content-type': 'application/json', [FORWARDED_HEADER]: '1' },
        body: JSON.stringify(args),
        signal: AbortSignal.timeout(ACTION_FORWARD_TIMEOUT_MS),
      });
    } catch (err) {
      throw new WaterbearError('WB_TIMEOUT', `the primary ${primary}'s dashboard (${dashboard}) did not answer: ${(err as Error).message}`, { cause: err });
    }
    const body = await res.json().catch(() => null) as { error?: { code: string; message: string }; result?: Record<string, unknown> } | null;
    if (!res.ok) {
      const code = (body?.error?.code ?? 'WB_PROTOCOL') as ErrorCode;
      throw new WaterbearError(code, body?.error?.message ?? `the primary's dashboard answered HTTP ${res.status}`, { details: { httpStatus: res.status, via: primary } });
    }
    return body?.result ?? {};
  }
}
