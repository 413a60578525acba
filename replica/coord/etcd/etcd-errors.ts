/**
 * What an etcd failure means for a coordinator operation, and its WaterbearError. Errors reach us
 * either typed by etcd3 (unary calls) or as raw gRPC status errors (streams), so both are handled.
 */
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  EtcdWatchStreamEnded,
  GRPCDeadlineExceededError,
  GRPCUnauthenticatedError,
  isRecoverableError,
} from 'etcd3';
import { WaterbearError } from '../../../libos-host/errors.js';

/**
 * - unreachable: the request did not reach a working etcd (connection refused or lost, no leader,
 *   etcd-side timeout); worth retrying while the operation's time allows;
 * - timeout: the operation's deadline passed;
 * - lease-not-found: etcd no longer has the lease (it expired or was revoked);
 * - permission: etcd refused our credentials;
 * - other: anything else etcd answered.
 */
export type EtcdFailureKind = 'unreachable' | 'timeout' | 'lease-not-found' | 'permission' | 'other';

/** gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
const GRPC_CANCELLED = 1;
const GRPC_UNKNOWN = 2;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_ABORTED = 10;
const GRPC_INTERNAL = 13;
const GRPC_UNAVAILABLE = 14;
const GRPC_UNAUTHENTICATED = 16;

/** Marker for our own operation timer (not a gRPC error). */
export class OperationTimeout extends Error {
  constructor(readonly afterMs: number) {
    super(`no answer within ${afterMs} ms`);
    this.name = 'OperationTimeout';
  }
}

/** Classifies any error thrown by an etcd request or stream. */
export function classifyEtcdError(err: unknown): EtcdFailureKind {
  if (err instanceof OperationTimeout || err instanceof GRPCDeadlineExceededError) return 'timeout';
  if (err instanceof EtcdLeaseInvalidError) return 'lease-not-found';
  if (
    err instanceof EtcdPermissionDeniedError ||
    err instanceof EtcdAuthenticationFailedError ||
    err instanceof EtcdInvalidAuthTokenError ||
    err instanceof GRPCUnauthenticatedError
  ) {
    return 'permission';
  }
  if (err instanceof ClientClosedError || err instanceof EtcdWatchStreamEnded) return 'unreachable';
  if (!(err instanceof Error)) return 'other';
  if (err.message.includes('requested lease not found')) return 'lease-not-found';
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'number') {
    switch (code) {
      case GRPC_DEADLINE_EXCEEDED:
        return 'timeout';
      case GRPC_PERMISSION_DENIED:
      case GRPC_UNAUTHENTICATED:
        return 'permission';
      case GRPC_CANCELLED:
      case GRPC_UNKNOWN:
      case GRPC_RESOURCE_EXHAUSTED:
      case GRPC_ABORTED:
      case GRPC_INTERNAL:
      case GRPC_UNAVAILABLE:
        return 'unreachable';
      default:
        return 'other';
    }
  }
  return isRecoverableError(err) ? 'unreachable' : 'other';
}

/**
 * The WaterbearError for a failed operation `what` (e.g. "reading the view").
 * WB_TIMEOUT for timeouts, WB_PERMISSION for refused credentials, WB_COORD_UNAVAILABLE otherwise
 * (with `details.leaseNotFound` when etcd no longer has the lease).
 */
export function etcdFailure(what: string, err: unknown, endpoints: readonly string[]): WaterbearError {
  if (err instanceof WaterbearError) return err;
  const where = endpoints.join(', ');
  const why = err instanceof Error ? err.message : String(err);
  switch (classifyEtcdError(err)) {
    case 'timeout':
      return new WaterbearError('WB_TIMEOUT', `${what}: etcd (${where}) did not answer in time (${why}); the outcome is unknown`, { cause: err });
    case 'permission':
      return new WaterbearError('WB_PERMISSION', `${what}: etcd (${where}) refused the request (${why}); check the client certificate or etcd's roles`, { cause: err });
    case 'lease-not-found':
      return new WaterbearError('WB_COORD_UNAVAILABLE', `${what}: etcd no longer has the lease (${why})`, { cause: err, details: { leaseNotFound: true } });
    case 'unreachable':
      return new WaterbearError('WB_COORD_UNAVAILABLE', `${what}: etcd (${where}) is unreachable (${why}); check that etcd runs and has a leader`, { cause: err });
    default:
      return new WaterbearError('WB_COORD_UNAVAILABLE', `${what}: etcd (${where}) failed (${why})`, { cause: err });
  }
}

/** True for the error `etcdFailure` returns when etcd no longer has a lease. */
export function isLeaseNotFound(err: unknown): boolean {
  return err instanceof WaterbearError && err.details?.leaseNotFound === true;
}
