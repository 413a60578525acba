/**
 * The etcd connection: an `etcd3` client (connection pool, TLS, the etcd v3 protos) used through its
 * low-level RPC clients (`kv`, `leaseClient`, `watchClient`), so that every compare, deadline and
 * stream is ours. etcd3's own retry and circuit-breaker policies are replaced by a pass-through:
 * its circuit breaker would refuse every request for 5 s after etcd came back, and its retries would
 * run past our deadlines. Instead `EtcdRequests.run` retries an unreachable etcd (each attempt on a
 * randomly chosen endpoint) until the operation's single deadline.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Etcd3,
  GRPCUnavailableError,
  type IDuplexStream,
  type ILeaseKeepAliveRequest,
  type ILeaseKeepAliveResponse,
  type IOptions,
} from 'etcd3';
import { WaterbearError } from '../../../libos-host/errors.js';
import { classifyEtcdError, etcdFailure, OperationTimeout } from './etcd-errors.js';
import {
  ETCD_GRPC_KEEPALIVE_INTERVAL_MS,
  ETCD_GRPC_KEEPALIVE_TIMEOUT_MS,
  ETCD_RECONNECT_MAX_BACKOFF_MS,
  ETCD_RECONNECT_MIN_BACKOFF_MS,
  type ResolvedEtcdOptions,
} from './etcd-options.js';

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;

const NEVER_ABORTED = new AbortController().signal;
const NO_LISTENERS = (): { dispose(): void } => ({ dispose: () => undefined });

/** A cockatiel policy that runs the call once, as is. */
const PASS_THROUGH_POLICY = {
  onSuccess: NO_LISTENERS,
  onFailure: NO_LISTENERS,
  execute: async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> => fn({ signal: NEVER_ABORTED }),
} as unknown as Policy;

/** Creates the etcd3 client for resolved options. Connects lazily, on the first request. */
export function createEtcdClient(options: ResolvedEtcdOptions): Etcd3 {
  const clientOptions: IOptions = {
    hosts: [...options.endpoints],
    grpcOptions: {
      'grpc.keepalive_time_ms': ETCD_GRPC_KEEPALIVE_INTERVAL_MS,
      'grpc.keepalive_timeout_ms': ETCD_GRPC_KEEPALIVE_TIMEOUT_MS,
      'grpc.initial_reconnect_backoff_ms': ETCD_RECONNECT_MIN_BACKOFF_MS,
      'grpc.max_reconnect_backoff_ms': ETCD_RECONNECT_MAX_BACKOFF_MS,
    },
    faultHandling: { host: () => PASS_THROUGH_POLICY, global: PASS_THROUGH_POLICY },
  };
  if (options.credentials !== undefined) clientOptions.credentials = { ...options.credentials };
  return new Etcd3(clientOptions);
}

/** One deadline shared by every request of an operation, on the monotonic clock. */
export class Deadline {
  private readonly atMs: number;

  constructor(readonly budgetMs: number) {
    this.atMs = performance.now() + budgetMs;
  }

  remainingMs(): number {
    return Math.max(0, this.atMs - performance.now());
  }

  /** The same instant as a gRPC deadline (gRPC takes wall-clock dates). */
  grpcDeadline(): Date {
    return new Date(Date.now() + this.remainingMs());
  }
}

/** Resolves or rejects like `p`, or rejects with OperationTimeout after `ms`. */
function withTimer<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OperationTimeout(ms)), ms);
  });
  p.catch(() => undefined); // a late failure after the timer fired is not unhandled
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Runs etcd requests with one deadline per operation and retries while etcd is unreachable. */
export class EtcdRequests {
  constructor(
    private readonly options: ResolvedEtcdOptions,
    private readonly isClosed: () => boolean,
  ) {}

  /** A fresh deadline of `requestTimeoutMs`. */
  deadline(): Deadline {
    return new Deadline(this.options.requestTimeoutMs);
  }

  /**
   * Runs `attempt` (one request) until it succeeds. An unreachable etcd is retried after
   * `requestRetryDelayMs` while the deadline allows; requests that reached etcd are not retried here.
   * @throws WaterbearError WB_COORD_UNAVAILABLE (unreachable, closed, or etcd failed; details.leaseNotFound
   *   when etcd lost the lease), WB_TIMEOUT (deadline passed during a request), WB_PERMISSION.
   */
  async run<T>(what: string, deadline: Deadline, attempt: (callOptions: { deadline: Date }) => Promise<T>): Promise<T> {
    let lastUnreachable: unknown = null;
    for (;;) {
      if (this.isClosed()) throw new WaterbearError('WB_COORD_UNAVAILABLE', `${what}: the etcd coordinator is closed`);
      const remaining = deadline.remainingMs();
      if (remaining <= 0) {
        throw lastUnreachable !== null
          ? etcdFailure(what, lastUnreachable, this.options.endpoints)
          : etcdFailure(what, new OperationTimeout(deadline.budgetMs), this.options.endpoints);
      }
      try {
        return await withTimer(attempt({ deadline: deadline.grpcDeadline() }), remaining);
      } catch (err) {
        if (classifyEtcdError(err) !== 'unreachable' || deadline.remainingMs() <= this.options.requestRetryDelayMs) {
          throw etcdFailure(what, err, this.options.endpoints);
        }
        lastUnreachable = err;
        await sleep(this.options.requestRetryDelayMs);
      }
    }
  }
}

/**
 * Sends one keepalive for `leaseId` on its own stream and resolves with etcd's answer (TTL "0" or
 * less when etcd no longer has the lease). The stream is closed as soon as the answer arrives.
 */
export async function keepaliveOnce(client: Etcd3, leaseId: string, callOptions: { deadline: Date }): Promise<ILeaseKeepAliveResponse> {
  const stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> = await client.leaseClient.leaseKeepAlive(callOptions);
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      // end() first: a stream that is no longer writable is not reported as a failed host by etcd3.
      stream.end();
      stream.cancel();
      fn();
    };
    stream.on('data', (res) => settle(() => resolve(res)));
    stream.on('error', (err) => settle(() => reject(err)));
    stream.on('end', () => settle(() => reject(new GRPCUnavailableError('the keepalive stream ended without an answer'))));
    stream.write({ ID: leaseId });
  });
}
