import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../cli/paths.js';
import { loadClusterConfig, type ClusterConfig } from '../../replica/config/cluster-config.js';
import { LocalCluster } from '../../replica/supervisor/local-cluster.js';
import type { StatusReply } from '../../replica/wire/replication-wire.js';
import { freePort } from './servers.js';

/** How long a benchmark cluster may take to elect a primary with a backup in its view. */
export const CLUSTER_READY_TIMEOUT_MS = 60_000;
/** Poll interval of the wait helpers. */
export const POLL_INTERVAL_MS = 10;

export interface BenchClusterOptions {
  /** The guest module (absolute path). */
  guest: string;
  /** guest.env entries. */
  env?: Record<string, string>;
  /** guest.memoryLimit, e.g. "512MiB". */
  memoryLimit?: string;
  /** replication: fields of the cluster file, written as given (e.g. { ackAfter: 'memory', checkpointMinInterval: '0ms' }). */
  replication?: Record<string, string | number>;
  /** WATERBEAR_LOG_LEVEL of the members (default warn). */
  logLevel?: string;
  /** Where prepared images are cached (shared by every cluster of a run). */
  cacheDir: string;
  /** A command each member runs under (LocalCluster's launchPrefix), e.g. for profiling. */
  launchPrefix?: string[];
  /** Loopback hosts of members a, b and w (default 127.0.0.1), e.g. behind a link model. */
  memberHosts?: readonly [string, string, string];
}

/** One pino JSON line a member wrote on stderr. `time` is the member's Date.now() (ms since the epoch). */
export interface MemberLogLine { member: string; pid: number; time: number; msg: string; line: Record<string, unknown> }

/** A member process start, by the supervisor's clock (Date.now()). */
export interface MemberSpawn { member: string; pid: number; at: number }

/**
 * A replicated cluster for a benchmark: replicas a and b and witness w, each its own process
 * (LocalCluster, which restarts members that die), on free loopback ports, in a temp dir. Members'
 * stderr is read line by line; JSON (pino) lines are kept in `logs` for phase timestamps.
 */
export class BenchCluster {
  readonly logs: MemberLogLine[] = [];
  readonly spawns: MemberSpawn[] = [];

  private constructor(readonly cluster: LocalCluster, readonly config: ClusterConfig, readonly dir: string, readonly servicePort: number) {}

  static async start(o: BenchClusterOptions): Promise<BenchCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'wb-bench-cluster-'));
    const [svc, pa, pb, pw] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const [ha, hb, hw] = o.memberHosts ?? ['127.0.0.1', '127.0.0.1', '127.0.0.1'];
    const file = join(dir, 'waterbear.yaml');
    const env = Object.entries(o.env ?? {}).map(([k, v]) => `${k}: "${v}"`).join(', ');
    const rep = Object.entries(o.replication ?? {}).map(([k, v]) => `  ${k}: ${v}`).join('\n');
    writeFileSync(file, `cluster: bench
guest:
  module: ${o.guest}
${o.memoryLimit !== undefined ? `  memoryLimit: ${o.memoryLimit}\n` : ''}${env !== '' ? `  env: { ${env} }\n` : ''}listen: [127.0.0.1:${svc}]
replicas:
  - { id: a, address: ${ha}:${pa}, dataDir: ${dir}/a }
  - { id: b, address: ${hb}:${pb}, dataDir: ${dir}/b }
witnesses:
  - { id: w, address: ${hw}:${pw}, dataDir: ${dir}/w }
${rep !== '' ? `replication:\n${rep}\n` : ''}`);
    const config = loadClusterConfig(file);
    const cluster = new LocalCluster({
      configPath: file, config, restart: true, stdio: 'pipe', stdout: 'ignore', launchPrefix: o.launchPrefix,
      env: { WATERBEAR_CACHE_DIR: o.cacheDir, WATERBEAR_LOG_LEVEL: o.logLevel ?? 'warn' },
    });
    const bc = new BenchCluster(cluster, config, dir, svc);
    cluster.on('spawn', (id: string, pid: number) => {
      bc.spawns.push({ member: id, pid, at: Date.now() });
      const stderr = cluster.members.get(id)?.child?.stderr;
      if (stderr === null || stderr === undefined) return;
      // Always drained: a full pipe would block the member.
      createInterface({ input: stderr }).on('line', (text) => {
        if (!text.startsWith('{')) return;
        try {
          const line = JSON.parse(text) as Record<string, unknown>;
          if (typeof line.time === 'number' && typeof line.msg === 'string') bc.logs.push({ member: id, pid, time: line.time, msg: line.msg, line });
        } catch { /* not a log line */ }
      });
    });
    cluster.start();
    return bc;
  }

  /**
   * The primary of the highest view once its view has `backups` backups, it says it is protected,
   * the backups say they are backups of that view — and it stays so for `stableMs` (a cluster
   * that just started may still drop a slow backup and take it back).
   */
  async waitProtected(timeoutMs = CLUSTER_READY_TIMEOUT_MS, backups = 1, stableMs = 0): Promise<StatusReply> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const p = await pollUntil(`a protected primary with ${backups} backup(s)`, () => this.protectedNow(backups), Math.max(0, end - Date.now()));
      if (stableMs <= 0) return p;
      await new Promise((r) => setTimeout(r, stableMs));
      const again = await this.protectedNow(backups).catch(() => null);
      if (again !== null && again.view === p.view) return again;
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for a primary that stays protected for ${stableMs} ms`);
    }
  }

  /** The protected primary (see waitProtected), or null. */
  async protectedNow(backups = 1): Promise<StatusReply | null> {
    // View 1 names every replica as a backup before it runs: also ask the backups themselves.
    const p = await this.cluster.primary();
    if (p === null || !p.protected || p.backups.length < backups) return null;
    const bs = await Promise.all(p.backups.map((b) => this.cluster.status(b)));
    return bs.every((b) => b !== null && b.role === 'backup' && b.view === p.view) ? p : null;
  }

  /** First log line of `member` (any process of it, or only `pid`) with message `msg` at or after `since`. */
  findLog(member: string, msg: string | RegExp, since: number, pid?: number): MemberLogLine | undefined {
    return this.logs.find((l) => l.member === member && (pid === undefined || l.pid === pid) && l.time >= since && (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)));
  }

  /** How many log lines (any member) with message `msg` were written in [from, to]. */
  countLogs(msg: string | RegExp, from: number, to = Infinity): number {
    return this.logs.filter((l) => l.time >= from && l.time <= to && (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg))).length;
  }

  /** Kill every member (by the PIDs LocalCluster started) and remove the temp dir. */
  async stop(): Promise<void> {
    await this.cluster.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Poll `f` every POLL_INTERVAL_MS until it returns non-null, or throw after `timeoutMs`. */
export async function pollUntil<T>(what: string, f: () => Promise<T | null>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => null);
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
}

/** The prepared-image cache of benchmark runs (gitignored). */
export function benchCacheDir(): string { return join(packageRoot(), '.cache/bench-images'); }
