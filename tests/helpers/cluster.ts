import { closeSync, mkdirSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { freePort } from '../../bench/support/servers.js';
import { RespClient } from '../../chaos/clients/resp-client.js';
import { loadClusterConfig, type ClusterConfig } from '../../replica/config/cluster-config.js';
import { LocalCluster, type LocalClusterOptions } from '../../replica/supervisor/local-cluster.js';
import type { StatusReply } from '../../replica/wire/replication-wire.js';
import { REPO } from './lvm.js';

export interface TestCluster {
  cluster: LocalCluster;
  config: ClusterConfig;
  dir: string;
  servicePort: number;
  stop(): Promise<void>;
  /** Stop every member with `signal`, then start them all again on the same file and data (a whole-cluster restart). */
  restartAll(signal: NodeJS.Signals): Promise<void>;
  primary(): Promise<StatusReply>;
  /** Wait until the primary's view includes `backups` backups (protected). */
  protectedPrimary(backups?: number, timeoutMs?: number): Promise<StatusReply>;
  client(): Promise<RespClient>;
}

/** Poll `f` until it returns a truthy value, or fail after `timeoutMs`. */
export async function until<T>(what: string, f: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await f();
      if (v !== null && v !== undefined && v !== false) return v as T;
    } catch { /* retry */ }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * A real local cluster for a test: replicas a and b and witness w (unless `witness: false`), each its own process
 * (`waterbear replica` / `waterbear witness` from dist/), on free loopback ports, in a temp dir.
 */
export async function startTestCluster(o: {
  replication?: string; guest?: string; guestEnv?: Record<string, string>; restart?: boolean; extraYaml?: string; dashboards?: boolean; env?: NodeJS.ProcessEnv;
  /** false: no witness (a cluster on etcd, whose quorum is etcd's). */
  witness?: boolean;
  /** The members' stderr goes to this file (for a test that reads what they print). */
  stderrFile?: string;
  /** A member's data folder elsewhere than in the cluster's temp dir (e.g. on a small disk). */
  dataDirs?: Partial<Record<'a' | 'b' | 'w', string>>;
} = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-cluster-'));
  const [svc, pa, pb, pw] = [await freePort(), await freePort(), await freePort(), await freePort()];
  // With dashboards: true, replicas a and b serve their dashboards (config.replicas[i].dashboard).
  const dash = o.dashboards === true ? [`, dashboard: 127.0.0.1:${await freePort()}`, `, dashboard: 127.0.0.1:${await freePort()}`] : ['', ''];
  const file = join(dir, 'waterbear.yaml');
  writeFileSync(file, `cluster: test
guest: { module: ${o.guest ?? `${REPO}guests/kv.wasm`}${o.guestEnv !== undefined ? `, env: ${JSON.stringify(o.guestEnv)}` : ''} }
listen: [127.0.0.1:${svc}]
replicas:
  - { id: a, address: 127.0.0.1:${pa}, dataDir: ${o.dataDirs?.a ?? `${dir}/a`}${dash[0]} }
  - { id: b, address: 127.0.0.1:${pb}, dataDir: ${o.dataDirs?.b ?? `${dir}/b`}${dash[1]} }
${o.witness === false ? '' : `witnesses:\n  - { id: w, address: 127.0.0.1:${pw}, dataDir: ${o.dataDirs?.w ?? `${dir}/w`} }\n`}${o.replication !== undefined ? `replication: ${o.replication}\n` : ''}${o.extraYaml ?? ''}`);
  const config = loadClusterConfig(file);
  // WB_TEST_CLUSTER_LOGS=DIR: the members' stderr goes straight to DIR/<cluster dir>.log (one file
  // descriptor shared by the members; no pipe through the test process that could hold them up).
  const logDir = process.env.WB_TEST_CLUSTER_LOGS;
  if (logDir !== undefined) mkdirSync(logDir, { recursive: true });
  const logFile = o.stderrFile ?? (logDir === undefined ? undefined : join(logDir, `${basename(dir)}.log`));
  const logFd = logFile === undefined ? undefined : openSync(logFile, 'a');
  // WB_TEST_CLUSTER_STDERR=1: members' stderr (when not logged to a file) and stdout on the console.
  const shown = process.env.WB_TEST_CLUSTER_STDERR === '1' ? 'inherit' : 'ignore';
  const options: LocalClusterOptions = {
    configPath: file, config, restart: o.restart ?? true, stdio: logFd ?? shown,
    stdout: shown, // witness banners, guest consoles
    env: { WATERBEAR_CACHE_DIR: join(REPO, '.cache/test-images'), WATERBEAR_LOG_LEVEL: process.env.WATERBEAR_LOG_LEVEL ?? 'error', ...o.env },
  };
  let cluster = new LocalCluster(options);
  cluster.start();
  let logClosed = false;
  return {
    get cluster() { return cluster; },
    config, dir, servicePort: svc,
    restartAll: async (signal) => {
      await cluster.stop(signal);
      cluster = new LocalCluster(options);
      cluster.start();
    },
    stop: async () => {
      await cluster.stop('SIGKILL');
      if (logFd !== undefined && !logClosed) { logClosed = true; closeSync(logFd); }
    },
    primary: () => until('a primary', () => cluster.primary()),
    protectedPrimary: (backups = 1, timeoutMs = 30_000) =>
      until(`a primary with ${backups} backup(s) that acknowledged a checkpoint`, async () => {
        const p = await cluster.primary();
        if (p === null || !p.protected || p.backups.length < backups) return null;
        // In the view is not enough: at cluster start a backup is in view 1 before it holds anything.
        const links = (JSON.parse(p.statusJson) as { links: Array<{ backup: string; acked: number }> }).links;
        return p.backups.every((b) => links.some((l) => l.backup === b && l.acked > 0)) ? p : null;
      }, timeoutMs),
    client: () => until('a connection to the service', () => RespClient.connect(svc, '127.0.0.1', 1000)),
  };
}

/**
 * The cluster file of a cluster that is not running: replicas a and b (with dashboards when
 * asked) and witness w on free loopback ports, in a temp dir. A dashboard on it reports NO
 * PRIMARY with every member down until someone starts the members.
 */
export async function clusterFileNotRunning(name: string, o: { dashboards?: boolean } = {}): Promise<{ file: string; dir: string; config: ClusterConfig }> {
  const dir = mkdtempSync(join(tmpdir(), `wb-${name}-`));
  const [svc, a, b, w] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const dash = o.dashboards === true ? [await freePort(), await freePort()] : [];
  const member = (id: string, port: number, dashboard?: number): Record<string, string> =>
    ({ id, address: `127.0.0.1:${port}`, dataDir: join(dir, id), ...(dashboard !== undefined ? { dashboard: `127.0.0.1:${dashboard}` } : {}) });
  const file = join(dir, 'waterbear.yaml');
  // A cluster file is YAML, and JSON is YAML.
  writeFileSync(file, JSON.stringify({
    cluster: name, guest: { module: join(REPO, 'guests/kv.wasm') }, listen: [`127.0.0.1:${svc}`],
    replicas: [member('a', a, dash[0]), member('b', b, dash[1])], witnesses: [member('w', w)],
  }));
  return { file, dir, config: loadClusterConfig(file) };
}
