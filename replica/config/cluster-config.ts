import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { WaterbearError } from '../../libos-host/errors.js';
import { checkEtcdEndpoint, ETCD_CLUSTER_NAME_RULE, ETCD_KEY_PREFIX_RULE, etcdEndpointsSecure, isEtcdClusterName, isEtcdKeyPrefix } from '../coord/etcd/etcd-options.js';
import { parseListenUri } from '../../libos-host/platform/listen-address.js';
import { checkRange, parseDurationMs, parseSize } from '../../libos-host/units.js';
import { DEFAULT_MEMORY_LIMIT_BYTES, parseMemoryLimit } from '../../libos-host/image/memory-limit.js';
import { firstMachineClash, isLoopback } from './machine-clashes.js';

/** Defaults, each with its unit in the name. Chosen from bench:replication (see docs/replication.md). */
export const DEFAULT_CHECKPOINT_MAX_INTERVAL_MS = 25;
export type AckAfter = 'disk' | 'memory';
/**
 * Per acknowledgement mode. With `disk` the backup's fdatasync already batches: requests gather
 * while one checkpoint is being made durable, and a minimum interval or a second checkpoint in
 * flight only adds waits (bench:replication section 2, sessions 19 and 20: min 0 ms / depth 1
 * led every column, 1.18x and 1.31x the old defaults' 16-client throughput).
 */
export const DEFAULT_CHECKPOINT_MIN_INTERVAL_MS: Readonly<Record<AckAfter, number>> = { disk: 0, memory: 1 };
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 50;
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 300;
export const DEFAULT_MAX_INFLIGHT_EPOCHS = 16;
/** Checkpoints in flight (captured, not acknowledged) before the next one waits for an ack (see EpochPolicy); per mode as above. */
export const DEFAULT_CHECKPOINT_PIPELINE_DEPTH: Readonly<Record<AckAfter, number>> = { disk: 1, memory: 2 };
export const DEFAULT_MAX_LAG_BYTES = 256 * 1024 * 1024;
/**
 * With ackAfter memory, a backup writes what it acknowledged to its store at most this often
 * (see BackupDriver). Each write runs an LMDB transaction body on the backup's event loop (~1 ms
 * per batch under 16 clients), during which it neither reads checkpoints nor flushes acks.
 * Session 21 (docs/replication.md): 50 ms against the old 10 ms, redis-benchmark A/B, 1.38x SETs
 * at 16 clients and 1.51x at 64; bench:replication section 6, two runs: 25 ms 1.06-1.17x 10 ms at
 * 64 clients, 10-200 ms within spread at 16, storing every epoch (0) the slowest. 25 is the
 * shortest interval that keeps the gain, so the backup's disk copy stays as fresh as costs nothing.
 */
export const DEFAULT_MEMORY_STORE_INTERVAL_MS = 25;
/**
 * A backup needing a full image of a guest this large gets it by iterative pre-copy while the
 * guest serves (see docs/replication.md); smaller guests send one full checkpoint.
 */
export const DEFAULT_PRECOPY_MIN_BYTES = 16 * 1024 * 1024;

export interface ReplicaConfig {
  id: string;
  /** host:port of the replica's gRPC server (replication, coordination, control). */
  address: string;
  /** Where its checkpoint store and coordinator state live. */
  dataDir: string;
  /** host:port of its dashboard/metrics HTTP server, or null. */
  dashboard: string | null;
}

export interface TlsConfig { ca: string; cert: string; key: string }
/** etcd's TLS files: the CA that signed etcd's certificate, and a client certificate unless etcd asks for none. */
export interface EtcdTlsConfig { ca: string; cert: string | null; key: string | null }

export interface ClusterConfig {
  /** Folder of the cluster file: relative paths in it are resolved against it. */
  baseDir: string;
  cluster: string;
  guest: { module: string; args: string[]; env: string[]; memoryLimitBytes: number; dirs: Array<{ guestPath: string; hostPath: string | null }> };
  /** Service listeners the primary pre-opens for the guest (fd 3, 4, …). */
  listen: string[];
  replicas: ReplicaConfig[];
  witnesses: ReplicaConfig[];
  /**
   * etcd: `tls` is what the replicas present to and trust from etcd (https:// endpoints only):
   * `coordinator.tls` from the file, else the cluster's `tls`; null with https:// means the
   * system's CAs and no client certificate.
   */
  coordinator: { backend: 'raft' } | { backend: 'etcd'; endpoints: string[]; prefix: string; tls: EtcdTlsConfig | null };
  replication: {
    ackAfter: AckAfter;
    checkpointMaxIntervalMs: number;
    checkpointMinIntervalMs: number;
    heartbeatIntervalMs: number;
    heartbeatTimeoutMs: number;
    maxInflightEpochs: number;
    /** Unacknowledged checkpoints before the next one waits: the guest keeps running and batches. */
    checkpointPipelineDepth: number;
    maxLagBytes: number;
    /**
     * Guests with at least this much memory send a backup its full image by iterative pre-copy
     * (pages read while the guest runs, then a short final delta); smaller ones in one capture.
     */
    precopyMinBytes: number;
    /** Dirty-page tracker, cluster-wide: every replica must prepare the same image. */
    tracker: 'instrument' | 'uffd';
    /**
     * Ship a dirty page as the byte runs that changed since a recent version the backup holds
     * (docs/replication.md, "Sub-page deltas"), instead of whole. Default true.
     */
    pageDeltas: boolean;
    /** ackAfter memory: the backup stores what it acknowledged at most this often (0: after every epoch). */
    memoryStoreIntervalMs: number;
  };
  tls: TlsConfig | null;
  /** Allow plaintext gRPC on non-loopback addresses (with a warning). */
  allowPlaintext: boolean;
}

/** Every field of each mapping in a cluster file (deploy/README.md lists them all; a test checks it). */
export const CLUSTER_FILE_FIELDS = {
  root: ['cluster', 'guest', 'listen', 'replicas', 'witnesses', 'coordinator', 'replication', 'tls', 'allowPlaintext'],
  guest: ['module', 'args', 'env', 'memoryLimit', 'dirs'],
  member: ['id', 'address', 'dataDir', 'dashboard'],
  coordinator: ['backend', 'endpoints', 'prefix', 'tls'],
  replication: ['ackAfter', 'checkpointMaxInterval', 'checkpointMinInterval', 'heartbeatInterval', 'heartbeatTimeout', 'maxInflightEpochs',
    'checkpointPipelineDepth', 'maxLagBytes', 'precopyMinBytes', 'tracker', 'pageDeltas', 'memoryStoreInterval'],
  tls: ['ca', 'cert', 'key'],
} as const;
/** The embedded Raft takes no settings besides its name; etcd's endpoints, prefix and tls only fit etcd. */
const RAFT_FIELDS = ['backend'] as const;

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
type Obj = Record<string, unknown>;

/** Read and validate a cluster file. Every problem is a WB_CONFIG_INVALID naming the file and the field. */
export function loadClusterConfig(path: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `cannot read cluster file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseClusterConfig(text, path);
}

/** Validate cluster-file text (`where` names it in errors). */
export function parseClusterConfig(text: string, where: string): ClusterConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const line = err instanceof YAMLParseError ? ` at line ${err.linePos?.[0].line ?? '?'}` : '';
    throw new WaterbearError('WB_CONFIG_INVALID', `${where}: not valid YAML${line}: ${(err as Error).message.split('\n')[0]}`);
  }
  const bad = (field: string, why: string): never => {
    throw new WaterbearError('WB_CONFIG_INVALID', `${where}: ${field} ${why}`);
  };
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) bad('the file', 'must be a mapping with guest, listen and replicas');
  const root = doc as Obj;
  // A misspelt field would otherwise silently keep its default: every mapping names its fields.
  const only = (o: Obj, field: string | null, fields: readonly string[]): Obj => {
    for (const k of Object.keys(o)) {
      if (!fields.includes(k)) bad(field === null ? k : `${field}.${k}`, `is not ${field === null ? 'a cluster-file' : `a ${field}`} field (fields: ${fields.join(', ')})`);
    }
    return o;
  };
  only(root, null, CLUSTER_FILE_FIELDS.root);
  const baseDir = where.includes('/') ? dirname(resolve(where)) : process.cwd();
  const path = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const str = (v: unknown, field: string): string => (typeof v === 'string' && v !== '' ? v : bad(field, `must be a non-empty string: got ${JSON.stringify(v)}`));
  const obj = (v: unknown, field: string): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : bad(field, 'must be a mapping'));
  const list = (v: unknown, field: string): unknown[] => (Array.isArray(v) ? v : bad(field, 'must be a list'));
  /** A string, number or boolean written as text (guest arguments and environment values). */
  const scalar = (v: unknown, field: string): string => (['string', 'number', 'boolean'].includes(typeof v) ? String(v) : bad(field, `must be a string, number or boolean: got ${JSON.stringify(v)}`));
  const bool = (v: unknown, field: string, def: boolean): boolean => (v === undefined ? def : typeof v === 'boolean' ? v : bad(field, `must be true or false: got ${JSON.stringify(v)}`));
  const count = (v: unknown, field: string, def: number, min: number, max: number): number => {
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v)) bad(field, `must be a whole number: got ${JSON.stringify(v)}`);
    return checkRange(v as number, min, max, `${where}: ${field}`);
  };
  const addr = (v: unknown, field: string): string => {
    const s = str(v, field);
    let port = 0;
    try { port = parseListenUri(s).port; } catch (err) { bad(field, (err as Error).message); }
    // Peers dial members, clients the service, operators the dashboard, and a new primary binds the old one's service address.
    if (port === 0) bad(field, `must name a fixed port, not 0 (which picks another free port at every start): got ${JSON.stringify(s)}`);
    return s;
  };
  const dur = (v: unknown, field: string, def: number, min: number, max: number): number => {
    if (v === undefined) return def;
    const ms = typeof v === 'number' ? v : parseDurationMs(String(v), `${where}: ${field}`);
    return checkRange(ms, min, max, `${where}: ${field}`, (x) => `${x} ms`);
  };

  const guestObj = only(obj(root.guest, 'guest'), 'guest', CLUSTER_FILE_FIELDS.guest);
  const env = guestObj.env === undefined ? [] : Object.entries(obj(guestObj.env, 'guest.env')).map(([k, v]) => `${k}=${scalar(v, `guest.env.${k}`)}`);
  const guest = {
    module: path(str(guestObj.module, 'guest.module')),
    args: guestObj.args === undefined ? [] : list(guestObj.args, 'guest.args').map((a, i) => scalar(a, `guest.args[${i}]`)),
    env,
    memoryLimitBytes: guestObj.memoryLimit === undefined ? DEFAULT_MEMORY_LIMIT_BYTES : parseMemoryLimit(String(guestObj.memoryLimit), `${where}: guest.memoryLimit`),
    dirs: guestObj.dirs === undefined ? [] : Object.entries(obj(guestObj.dirs, 'guest.dirs')).map(([g, h]) => ({ guestPath: g, hostPath: h === null ? null : path(str(h, `guest.dirs.${g}`)) })),
  };
  const listen = list(root.listen ?? bad('listen', 'is required: the service addresses, e.g. [127.0.0.1:7000]'), 'listen').map((a, i) => addr(a, `listen[${i}]`));
  if (listen.length === 0) bad('listen', 'must name at least one service address, e.g. [127.0.0.1:7000]: clients reach the primary there');

  const ids = new Set<string>();
  const addresses = new Set<string>();
  const member = (v: unknown, field: string): ReplicaConfig => {
    const o = only(obj(v, field), field, CLUSTER_FILE_FIELDS.member);
    const id = str(o.id, `${field}.id`);
    if (!ID.test(id)) bad(`${field}.id`, `must be letters, digits, '.', '_' or '-': got ${JSON.stringify(id)}`);
    if (ids.has(id)) bad(`${field}.id`, `"${id}" is used twice`);
    ids.add(id);
    const address = addr(o.address, `${field}.address`);
    if (addresses.has(address)) bad(`${field}.address`, `${address} is used twice`);
    addresses.add(address);
    return {
      id, address,
      dataDir: path(o.dataDir === undefined ? `.waterbear/${id}` : str(o.dataDir, `${field}.dataDir`)),
      dashboard: o.dashboard === undefined || o.dashboard === null ? null : addr(o.dashboard, `${field}.dashboard`),
    };
  };
  const replicas = list(root.replicas ?? bad('replicas', 'is required'), 'replicas').map((r, i) => member(r, `replicas[${i}]`));
  if (replicas.length < 1) bad('replicas', 'must name at least one replica');
  const witnesses = root.witnesses === undefined ? [] : list(root.witnesses, 'witnesses').map((w, i) => {
    const m = member(w, `witnesses[${i}]`);
    // A witness holds no guest and serves no dashboard: every replica's dashboard shows it.
    if (m.dashboard !== null) bad(`witnesses[${i}].dashboard`, "must not be set: a witness serves no dashboard (every replica's dashboard, and `waterbear dashboard`, show it)");
    return m;
  });

  const clash = firstMachineClash(listen, [
    ...replicas.map((m, i) => ({ ...m, field: `replicas[${i}]`, replica: true })),
    ...witnesses.map((m, i) => ({ ...m, field: `witnesses[${i}]`, replica: false })),
  ]);
  if (clash !== null) bad(clash.field, clash.why);

  const tlsFiles = (v: unknown, field: string): TlsConfig | null => {
    if (v === undefined || v === null) return null;
    const t = only(obj(v, field), field, CLUSTER_FILE_FIELDS.tls);
    return { ca: path(str(t.ca, `${field}.ca`)), cert: path(str(t.cert, `${field}.cert`)), key: path(str(t.key, `${field}.key`)) };
  };
  const tls = tlsFiles(root.tls, 'tls');
  // etcd may serve TLS without asking for client certificates: then `ca` alone.
  const etcdTlsFiles = (v: unknown, field: string): EtcdTlsConfig | null => {
    if (v === undefined || v === null) return null;
    const t = only(obj(v, field), field, CLUSTER_FILE_FIELDS.tls);
    if ((t.cert === undefined) !== (t.key === undefined)) bad(field, 'cert and key go together: give both (etcd asks for client certificates) or neither (it does not)');
    return { ca: path(str(t.ca, `${field}.ca`)), cert: t.cert === undefined ? null : path(str(t.cert, `${field}.cert`)), key: t.key === undefined ? null : path(str(t.key, `${field}.key`)) };
  };
  const allowPlaintext = bool(root.allowPlaintext, 'allowPlaintext', false);

  const coordObj = root.coordinator === undefined ? { backend: 'raft' } : obj(root.coordinator, 'coordinator');
  let coordinator: ClusterConfig["coordinator"] = { backend: "raft" };
  if (coordObj.backend === undefined || coordObj.backend === 'raft') {
    only(coordObj, 'coordinator', RAFT_FIELDS);
    coordinator = { backend: 'raft' };
    const voters = replicas.length + witnesses.length;
    if (voters === 2) bad('coordinator', 'with the embedded Raft needs an odd number of voters: add a witness (two replicas plus one witness tolerate one failure)');
  } else if (coordObj.backend === 'etcd') {
    only(coordObj, 'coordinator', CLUSTER_FILE_FIELDS.coordinator);
    const endpoints = list(coordObj.endpoints ?? bad('coordinator.endpoints', 'is required for the etcd backend'), 'coordinator.endpoints').map((e, i) => str(e, `coordinator.endpoints[${i}]`));
    if (endpoints.length === 0) bad('coordinator.endpoints', 'must name at least one etcd client URL, e.g. https://10.0.0.21:2379');
    // The checks EtcdCoordinator makes at construction, made here to name the field.
    const urls = endpoints.map((e, i) => {
      try { return checkEtcdEndpoint(e); } catch { return bad(`coordinator.endpoints[${i}]`, `must be an etcd client URL, http(s)://host:port: got ${JSON.stringify(e)}`); }
    });
    let secure = false;
    try { secure = etcdEndpointsSecure(urls); } catch { bad('coordinator.endpoints', 'must be all http:// or all https://, not a mix'); }
    const own = etcdTlsFiles(coordObj.tls, 'coordinator.tls');
    if (!secure && own !== null) bad('coordinator.tls', 'is given but the endpoints are http://: use https:// endpoints, or drop coordinator.tls');
    const prefix = coordObj.prefix === undefined ? '/waterbear/' : str(coordObj.prefix, 'coordinator.prefix');
    if (!isEtcdKeyPrefix(prefix)) bad('coordinator.prefix', `${ETCD_KEY_PREFIX_RULE}: got ${JSON.stringify(prefix)}`);
    if (root.cluster !== undefined && !isEtcdClusterName(root.cluster)) bad('cluster', `names the cluster's keys in etcd, so it ${ETCD_CLUSTER_NAME_RULE}: got ${JSON.stringify(root.cluster)}`);
    if (witnesses.length > 0) bad('witnesses', "are voters of the embedded Raft only: with the etcd backend, etcd's members are the quorum; remove the witnesses");
    coordinator = { backend: 'etcd', endpoints, prefix, tls: secure ? own ?? tls : null };
  } else {
    bad('coordinator.backend', `must be "raft" or "etcd": got ${JSON.stringify(coordObj.backend)}`);
  }

  const rep = only(root.replication === undefined ? {} : obj(root.replication, 'replication'), 'replication', CLUSTER_FILE_FIELDS.replication);
  const ackAfter: AckAfter = rep.ackAfter === undefined ? 'disk'
    : rep.ackAfter === 'disk' || rep.ackAfter === 'memory' ? rep.ackAfter : bad('replication.ackAfter', `must be "disk" or "memory": got ${JSON.stringify(rep.ackAfter)}`);
  const replication = {
    ackAfter,
    checkpointMaxIntervalMs: dur(rep.checkpointMaxInterval, 'replication.checkpointMaxInterval', DEFAULT_CHECKPOINT_MAX_INTERVAL_MS, 1, 10_000),
    checkpointMinIntervalMs: dur(rep.checkpointMinInterval, 'replication.checkpointMinInterval', DEFAULT_CHECKPOINT_MIN_INTERVAL_MS[ackAfter], 0, 10_000),
    heartbeatIntervalMs: dur(rep.heartbeatInterval, 'replication.heartbeatInterval', DEFAULT_HEARTBEAT_INTERVAL_MS, 5, 10_000),
    heartbeatTimeoutMs: dur(rep.heartbeatTimeout, 'replication.heartbeatTimeout', DEFAULT_HEARTBEAT_TIMEOUT_MS, 20, 60_000),
    maxInflightEpochs: count(rep.maxInflightEpochs, 'replication.maxInflightEpochs', DEFAULT_MAX_INFLIGHT_EPOCHS, 1, 1024),
    checkpointPipelineDepth: count(rep.checkpointPipelineDepth, 'replication.checkpointPipelineDepth', DEFAULT_CHECKPOINT_PIPELINE_DEPTH[ackAfter], 1, 1024),
    maxLagBytes: rep.maxLagBytes === undefined ? DEFAULT_MAX_LAG_BYTES : parseSize(String(rep.maxLagBytes), `${where}: replication.maxLagBytes`),
    precopyMinBytes: rep.precopyMinBytes === undefined ? DEFAULT_PRECOPY_MIN_BYTES : parseSize(String(rep.precopyMinBytes), `${where}: replication.precopyMinBytes`),
    tracker: (rep.tracker === undefined ? 'instrument' : rep.tracker) as 'instrument' | 'uffd',
    pageDeltas: bool(rep.pageDeltas, 'replication.pageDeltas', true),
    memoryStoreIntervalMs: dur(rep.memoryStoreInterval, 'replication.memoryStoreInterval', DEFAULT_MEMORY_STORE_INTERVAL_MS, 0, 10_000),
  };
  if (replication.tracker !== 'instrument' && replication.tracker !== 'uffd') {
    bad('replication.tracker', `must be "instrument" (portable) or "uffd" (Linux >= 6.7 on every machine): got ${JSON.stringify(rep.tracker)}`);
  }
  if (replication.checkpointPipelineDepth > replication.maxInflightEpochs) bad('replication.checkpointPipelineDepth', `must not exceed maxInflightEpochs (${replication.maxInflightEpochs})`);
  if (replication.checkpointMinIntervalMs > replication.checkpointMaxIntervalMs) bad('replication.checkpointMinInterval', 'must not exceed checkpointMaxInterval');
  if (replication.heartbeatTimeoutMs < 3 * replication.heartbeatIntervalMs) bad('replication.heartbeatTimeout', `must be at least 3 heartbeat intervals (${3 * replication.heartbeatIntervalMs} ms)`);

  const config: ClusterConfig = { baseDir, cluster: root.cluster === undefined ? 'default' : str(root.cluster, 'cluster'), guest, listen, replicas, witnesses, coordinator, replication, tls, allowPlaintext };
  const plain = unencryptedLinks(config)[0];
  if (plain !== undefined && !allowPlaintext) bad(plain.field, plain.refusal);
  return config;
}

/** A link that would carry replication or coordination traffic unencrypted off loopback. */
interface UnencryptedLink { field: string; label: string; refusal: string }

function unencryptedLinks(c: ClusterConfig): UnencryptedLink[] {
  const links: UnencryptedLink[] = [];
  if (c.tls === null) {
    for (const m of [...c.replicas, ...c.witnesses]) {
      if (isLoopback(parseListenUri(m.address).host)) continue;
      links.push({ field: `member ${m.id} address`, label: `member ${m.id} ${m.address}`,
        refusal: `${m.address} is not loopback: configure tls (ca, cert, key) or set allowPlaintext: true to send replication traffic unencrypted` });
    }
  }
  if (c.coordinator.backend === 'etcd') {
    for (const e of c.coordinator.endpoints) {
      const u = new URL(e);
      if (u.protocol !== 'http:' || isLoopback(u.hostname.replace(/^\[|\]$/g, ''))) continue;
      links.push({ field: 'coordinator.endpoints', label: `etcd ${e}`,
        refusal: `${e} is not loopback: use https:// endpoints (with tls or coordinator.tls), or set allowPlaintext: true to send coordination traffic unencrypted` });
    }
  }
  return links;
}

/**
 * Links that carry replication or coordination traffic unencrypted off loopback (allowed by
 * allowPlaintext, refused otherwise): each is worth a warning when a member starts.
 */
export function plaintextLinks(c: ClusterConfig): string[] {
  return unencryptedLinks(c).map((l) => l.label);
}

/** The member (replica or witness) with `id`. */
export function findMember(c: ClusterConfig, id: string): { member: ReplicaConfig; witness: boolean } {
  const r = c.replicas.find((m) => m.id === id);
  if (r !== undefined) return { member: r, witness: false };
  const w = c.witnesses.find((m) => m.id === id);
  if (w !== undefined) return { member: w, witness: true };
  throw new WaterbearError('WB_CONFIG_INVALID', `no replica or witness "${id}" in the cluster file (members: ${[...c.replicas, ...c.witnesses].map((m) => m.id).join(', ')})`);
}
