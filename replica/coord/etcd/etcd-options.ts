/**
 * Tunables of the etcd coordinator, as named constants with their unit, and the validated options
 * that override them (endpoints, TLS files, key layout, timeouts, lease timing).
 */
import { readFileSync } from 'node:fs';
import { WaterbearError } from '../../../libos-host/errors.js';
import { checkTlsFiles, type TlsFile } from '../../wire/tls-files.js';
import { resolveLeaseTiming, SYSTEM_MONOTONIC_CLOCK, type LeaseTiming, type MonotonicClock } from '../lease.js';

/** Bound on one coordinator operation (readView, proposeView, keepAlive), retries included. */
export const ETCD_REQUEST_TIMEOUT_MS = 1_000;
/** Pause before retrying a request that could not reach etcd, while its operation's timeout allows. */
export const ETCD_REQUEST_RETRY_DELAY_MS = 25;
/** First pause before a broken view watch is re-established (doubles up to the maximum). */
export const ETCD_WATCH_RETRY_MIN_DELAY_MS = 50;
/** Longest pause between two attempts to re-establish a view watch. */
export const ETCD_WATCH_RETRY_MAX_DELAY_MS = 1_000;
/** `awaitLeaseExpiry` reads the replica's lease key this often. */
export const ETCD_LEASE_POLL_INTERVAL_MS = 50;
/**
 * HTTP/2 keepalive ping interval on the gRPC channel: detects a silently dead etcd (no RST, e.g. a
 * partition) under an open watch. etcd's server refuses pings more often than every 5 s
 * (`--grpc-keepalive-min-time`), so it must not be lower.
 */
export const ETCD_GRPC_KEEPALIVE_INTERVAL_MS = 10_000;
/** How long an HTTP/2 keepalive ping may stay unanswered before the channel is considered dead. */
export const ETCD_GRPC_KEEPALIVE_TIMEOUT_MS = 5_000;
/** First reconnect backoff of the gRPC channel after etcd went away. */
export const ETCD_RECONNECT_MIN_BACKOFF_MS = 100;
/** Longest reconnect backoff of the gRPC channel (gRPC's default of 120 s would delay recovery). */
export const ETCD_RECONNECT_MAX_BACKOFF_MS = 1_000;
/** Default prefix of every key the coordinator writes. */
export const ETCD_DEFAULT_KEY_PREFIX = '/waterbear/';
/** Default cluster name: keys live under `<keyPrefix><cluster>/`. */
export const ETCD_DEFAULT_CLUSTER = 'default';

/** TLS to etcd: PEM files, read once at construction. */
export interface EtcdTlsOptions {
  /** CA certificate(s) that signed etcd's server certificate. */
  readonly caFile: string;
  /** Client certificate, for etcd's `--client-cert-auth` (give keyFile too). */
  readonly certFile?: string;
  /** Private key of the client certificate. */
  readonly keyFile?: string;
}

/** Options of `EtcdCoordinator`. Only `endpoints` is required. */
export interface EtcdCoordinatorOptions {
  /** etcd client URLs, all `http://host:port` or all `https://host:port` (https needs `tls` or the system CAs). */
  readonly endpoints: readonly string[];
  readonly tls?: EtcdTlsOptions;
  /** Prefix of every key, starting and ending with `/`. Default `/waterbear/`. */
  readonly keyPrefix?: string;
  /** Name of this waterbear cluster inside the prefix (several clusters can share one etcd). Default `default`. */
  readonly cluster?: string;
  /** Bound on one operation, ms (10..60000). Default ETCD_REQUEST_TIMEOUT_MS. */
  readonly requestTimeoutMs?: number;
  /** Pause before retrying an unreachable etcd within an operation, ms (1..10000). */
  readonly requestRetryDelayMs?: number;
  /** First pause before re-establishing a broken watch, ms (1..60000). */
  readonly watchRetryMinDelayMs?: number;
  /** Longest pause before re-establishing a broken watch, ms (watchRetryMinDelayMs..600000). */
  readonly watchRetryMaxDelayMs?: number;
  /** Poll interval of `awaitLeaseExpiry`, ms (1..60000). */
  readonly leasePollIntervalMs?: number;
  /**
   * Lease timing (lease.ts). etcd leases have whole-second TTLs, so ttlMs must be a multiple of
   * 1000 ms (default 2000 ms). etcd raises a TTL below its minimum (ceil(1.5 × election timeout))
   * to that minimum; holders keep using ttlMs, which is safe but makes failover slower.
   */
  readonly lease?: Partial<LeaseTiming>;
  /** Monotonic clock for lease arithmetic (tests inject one). */
  readonly clock?: MonotonicClock;
}

/** Validated options with every default filled in and the TLS files read. */
export interface ResolvedEtcdOptions {
  readonly endpoints: readonly string[];
  readonly secure: boolean;
  readonly credentials: { readonly rootCertificate: Buffer; readonly privateKey?: Buffer; readonly certChain?: Buffer } | undefined;
  readonly keyPrefix: string;
  readonly cluster: string;
  readonly requestTimeoutMs: number;
  readonly requestRetryDelayMs: number;
  readonly watchRetryMinDelayMs: number;
  readonly watchRetryMaxDelayMs: number;
  readonly leasePollIntervalMs: number;
  readonly lease: LeaseTiming;
  readonly clock: MonotonicClock;
}

/** Replica ids and cluster names: the same shape as replica ids in coordinator.ts (never a `/`). */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const KNOWN_KEYS = new Set([
  'endpoints', 'tls', 'keyPrefix', 'cluster', 'requestTimeoutMs', 'requestRetryDelayMs',
  'watchRetryMinDelayMs', 'watchRetryMaxDelayMs', 'leasePollIntervalMs', 'lease', 'clock',
]);

function invalid(message: string, cause?: unknown): WaterbearError {
  return new WaterbearError('WB_CONFIG_INVALID', message, cause === undefined ? undefined : { cause });
}

function durationMs(name: string, value: unknown, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw invalid(`etcd option ${name} must be between ${min} ms and ${max} ms: got ${String(value)}`);
  }
  return v;
}

/** One etcd client URL, scheme://host:port (http or https). @throws WB_CONFIG_INVALID naming what is wrong. */
export const ETCD_KEY_PREFIX_RULE = 'must start and end with "/" (printable ASCII, no "//", at most 256 characters)';
export const ETCD_CLUSTER_NAME_RULE = 'must be a name of letters, digits and . _ : - (at most 128)';

/** The key prefix rule (the cluster file checks it too, to name its field). */
export function isEtcdKeyPrefix(p: unknown): p is string {
  return typeof p === 'string' && /^\/([\x21-\x7e]{0,254}\/)?$/.test(p) && !p.includes('//');
}

/** The cluster name rule: the name is a component of every key. */
export function isEtcdClusterName(n: unknown): n is string {
  return typeof n === 'string' && NAME_PATTERN.test(n);
}

export function checkEtcdEndpoint(e: unknown): URL {
  if (typeof e !== 'string') throw invalid(`etcd endpoint must be a URL string such as http://127.0.0.1:2379: got ${String(e)}`);
  let url: URL;
  try {
    url = new URL(e);
  } catch (cause) {
    throw invalid(`etcd endpoint must be a URL such as http://127.0.0.1:2379: got ${JSON.stringify(e)}`, cause);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`etcd endpoint must start with http:// or https://: got ${JSON.stringify(e)}`);
  }
  if (url.hostname === '' || url.port === '') {
    throw invalid(`etcd endpoint must name a host and a port, e.g. http://127.0.0.1:2379: got ${JSON.stringify(e)}`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw invalid(`etcd endpoint must be scheme://host:port only (no path, query or credentials): got ${JSON.stringify(e)}`);
  }
  return url;
}

/** Whether the endpoints are https:// (true) or http:// (false). @throws WB_CONFIG_INVALID on a mix. */
export function etcdEndpointsSecure(urls: readonly URL[]): boolean {
  const secure = urls[0].protocol === 'https:';
  if (urls.some((u) => (u.protocol === 'https:') !== secure)) {
    throw invalid('etcd endpoints must be all http:// or all https://, not a mix');
  }
  return secure;
}

function readPem(name: string, path: unknown): TlsFile {
  if (typeof path !== 'string' || path === '') throw invalid(`etcd option tls.${name} must be a file path: got ${String(path)}`);
  try {
    return { bytes: readFileSync(path), name: `etcd option tls.${name} ${path}` };
  } catch (cause) {
    throw invalid(`etcd option tls.${name}: cannot read ${path}: ${(cause as Error).message}`, cause);
  }
}

/**
 * Validates options, fills in defaults and reads the TLS files.
 * @throws WaterbearError WB_CONFIG_INVALID naming the bad option (unknown key, malformed or mixed
 *   endpoints, unreadable or non-PEM TLS file, a key that is not the certificate's, TLS with http endpoints, out-of-range duration, bad lease timing).
 */
export function resolveEtcdOptions(options: EtcdCoordinatorOptions): ResolvedEtcdOptions {
  if (options === null || typeof options !== 'object') throw invalid(`etcd options must be an object: got ${String(options)}`);
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS.has(key)) throw invalid(`unknown etcd option ${JSON.stringify(key)}; known options: ${[...KNOWN_KEYS].join(', ')}`);
  }
  if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
    throw invalid('etcd option endpoints must be a non-empty list of URLs such as http://127.0.0.1:2379');
  }
  const urls = options.endpoints.map(checkEtcdEndpoint);
  const secure = etcdEndpointsSecure(urls);
  const endpoints = Object.freeze(urls.map((u) => `${u.protocol}//${u.host}`));

  let credentials: ResolvedEtcdOptions['credentials'];
  if (options.tls !== undefined) {
    const tls = options.tls;
    if (tls === null || typeof tls !== 'object') throw invalid('etcd option tls must be an object { caFile, certFile?, keyFile? }');
    if (!secure) throw invalid('etcd option tls is given but the endpoints are http://; use https:// endpoints');
    if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
      throw invalid('etcd options tls.certFile and tls.keyFile go together: give both or neither');
    }
    const ca = readPem('caFile', tls.caFile);
    const identity = tls.certFile !== undefined ? { cert: readPem('certFile', tls.certFile), key: readPem('keyFile', tls.keyFile) } : null;
    checkTlsFiles(ca, identity);
    credentials = {
      rootCertificate: ca.bytes,
      ...(identity !== null ? { certChain: identity.cert.bytes, privateKey: identity.key.bytes } : {}),
    };
  }

  const keyPrefix = options.keyPrefix ?? ETCD_DEFAULT_KEY_PREFIX;
  if (!isEtcdKeyPrefix(keyPrefix)) throw invalid(`etcd option keyPrefix ${ETCD_KEY_PREFIX_RULE}: got ${JSON.stringify(keyPrefix)}`);
  const cluster = options.cluster ?? ETCD_DEFAULT_CLUSTER;
  if (!isEtcdClusterName(cluster)) throw invalid(`etcd option cluster ${ETCD_CLUSTER_NAME_RULE}: got ${JSON.stringify(cluster)}`);

  const requestTimeoutMs = durationMs('requestTimeoutMs', options.requestTimeoutMs, ETCD_REQUEST_TIMEOUT_MS, 10, 60_000);
  const requestRetryDelayMs = durationMs('requestRetryDelayMs', options.requestRetryDelayMs, ETCD_REQUEST_RETRY_DELAY_MS, 1, 10_000);
  const watchRetryMinDelayMs = durationMs('watchRetryMinDelayMs', options.watchRetryMinDelayMs, ETCD_WATCH_RETRY_MIN_DELAY_MS, 1, 60_000);
  const watchRetryMaxDelayMs = durationMs(
    'watchRetryMaxDelayMs',
    options.watchRetryMaxDelayMs,
    Math.max(ETCD_WATCH_RETRY_MAX_DELAY_MS, watchRetryMinDelayMs),
    watchRetryMinDelayMs,
    600_000,
  );
  const leasePollIntervalMs = durationMs('leasePollIntervalMs', options.leasePollIntervalMs, ETCD_LEASE_POLL_INTERVAL_MS, 1, 60_000);

  if (options.lease !== undefined && (options.lease === null || typeof options.lease !== 'object')) {
    throw invalid('etcd option lease must be an object { ttlMs?, maxDriftRate?, marginMs? }');
  }
  const lease = resolveLeaseTiming(options.lease ?? {});
  if (lease.ttlMs < 1_000 || lease.ttlMs % 1_000 !== 0) {
    throw invalid(`etcd lease ttlMs must be a whole number of seconds (etcd's TTL unit), at least 1000 ms: got ${lease.ttlMs}`);
  }

  const clock = options.clock ?? SYSTEM_MONOTONIC_CLOCK;
  if (clock === null || typeof clock !== 'object' || typeof clock.nowMs !== 'function') {
    throw invalid('etcd option clock must be an object with a nowMs() method');
  }

  return Object.freeze({
    endpoints, secure, credentials, keyPrefix, cluster,
    requestTimeoutMs, requestRetryDelayMs, watchRetryMinDelayMs, watchRetryMaxDelayMs, leasePollIntervalMs,
    lease, clock,
  });
}

/** Checks a replica id before it becomes part of a key. @throws WaterbearError WB_CONFIG_INVALID. */
export function checkReplicaId(replicaId: string): void {
  if (typeof replicaId !== 'string' || !NAME_PATTERN.test(replicaId)) {
    throw invalid(`replica id must be letters, digits and . _ : - (at most 128): got ${JSON.stringify(replicaId)}`);
  }
}

/** Where the coordinator keeps its state in etcd. */
export class EtcdKeys {
  /** `<prefix><cluster>/view`: the current view, as coordinator.ts's `encodeView`. */
  readonly view: Buffer;
  private readonly leaseBase: string;

  constructor(options: Pick<ResolvedEtcdOptions, 'keyPrefix' | 'cluster'>) {
    const base = `${options.keyPrefix}${options.cluster}/`;
    this.view = Buffer.from(`${base}view`);
    this.leaseBase = `${base}lease/`;
  }

  /** `<prefix><cluster>/lease/<replicaId>`: exists while the replica's etcd lease (attached to it) lives. */
  lease(replicaId: string): Buffer {
    checkReplicaId(replicaId);
    return Buffer.from(`${this.leaseBase}${replicaId}`);
  }
}
