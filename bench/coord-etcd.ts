/**
 * The etcd half of bench:coord: view-change latency (proposeView → committed) and failover time
 * (a holder's last acknowledged keepalive → another client's awaitLeaseExpiry resolves and its
 * proposeView of the next view commits), against a real single-member etcd on loopback, with
 * waterbear's default lease timing and etcd's default raft timing.
 *
 *   npm run build && node dist/bench/coord-etcd.js
 */
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { EtcdCoordinator } from '../replica/coord/etcd/etcd-coordinator.js';
import { etcdGrantorTailMs } from '../replica/coord/etcd/etcd-lease.js';
import { LEASE_KEEPALIVE_INTERVAL_MS } from '../replica/coord/lease.js';
import { startEtcd, type EtcdServer } from '../tests/helpers/etcd-server.js';
import { nearestRank as percentile } from './lib/stats.js';

/** Proposals timed for the view-change latency. */
const VIEW_CHANGES = 200;
/** Untimed proposals first (connection set-up, etcd warm-up). */
const WARMUP_VIEW_CHANGES = 20;
/** Failovers measured; the median is reported. */
const FAILOVER_TRIALS = 3;
/** Keepalives a holder sends before it "dies". */
const KEEPALIVES_BEFORE_DEATH = 4;
/** A failover that takes longer than this is a failure of the benchmark, not a number. */
const FAILOVER_LIMIT_MS = 30_000;
/** etcd's raft timing in this benchmark (etcd's defaults). */
const ETCD_HEARTBEAT_MS = 100;
const ETCD_ELECTION_MS = 1_000;

export interface EtcdBenchResult {
  viewChangeP50Ms: number;
  viewChangeP99Ms: number;
  failoverMs: number;
  settings: string;
}

function median(xs: number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 50);
}

function etcdVersion(): string {
  const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  return /etcd Version:\s*(\S+)/.exec(r.stdout ?? '')?.[1] ?? 'unknown';
}

async function measureViewChanges(server: EtcdServer): Promise<number[]> {
  const c = new EtcdCoordinator({ endpoints: [server.endpoint], cluster: 'bench-views' });
  try {
    let current = (await c.readView())?.view ?? 0;
    const timings: number[] = [];
    for (let i = 0; i < WARMUP_VIEW_CHANGES + VIEW_CHANGES; i++) {
      const next = { view: current + 1, primary: i % 2 === 0 ? 'r1' : 'r2', backups: [i % 2 === 0 ? 'r2' : 'r1'] };
      const start = performance.now();
      await c.proposeView(current, next);
      if (i >= WARMUP_VIEW_CHANGES) timings.push(performance.now() - start);
      current = next.view;
    }
    return timings;
  } finally {
    await c.close();
  }
}

/** One failover: returns ms from the dead primary's last acknowledged keepalive to the new view's commit. */
async function measureFailover(server: EtcdServer, trial: number): Promise<number> {
  const cluster = `bench-failover-${trial}`;
  const primary = new EtcdCoordinator({ endpoints: [server.endpoint], cluster });
  const survivor = new EtcdCoordinator({ endpoints: [server.endpoint], cluster });
  try {
    const v = await primary.proposeView(0, { view: 1, primary: 'p', backups: ['b'] });
    for (let i = 0; i < KEEPALIVES_BEFORE_DEATH; i++) {
      await primary.keepAlive('p');
      await new Promise((r) => setTimeout(r, LEASE_KEEPALIVE_INTERVAL_MS));
    }
    const last = await primary.keepAlive('p');
    // The primary "is killed": it sends nothing more (close() does not revoke the lease).
    await primary.close();
    await survivor.awaitLeaseExpiry('p', AbortSignal.timeout(FAILOVER_LIMIT_MS));
    await survivor.proposeView(v.view, { view: v.view + 1, primary: 'b', backups: [] });
    return performance.now() - last.sentAtMs;
  } finally {
    await primary.close();
    await survivor.close();
  }
}

/**
 * Starts a real etcd (loopback, temporary data directory), measures, stops it.
 * @throws Error when etcd is not installed or does not start.
 */
export async function benchEtcd(): Promise<EtcdBenchResult> {
  const server = await startEtcd({ heartbeatIntervalMs: ETCD_HEARTBEAT_MS, electionTimeoutMs: ETCD_ELECTION_MS });
  try {
    const timings = (await measureViewChanges(server)).sort((a, b) => a - b);
    const failovers: number[] = [];
    for (let trial = 0; trial < FAILOVER_TRIALS; trial++) failovers.push(await measureFailover(server, trial));
    const probe = new EtcdCoordinator({ endpoints: [server.endpoint] });
    const o = probe.options;
    await probe.close();
    const settings = [
      `etcd ${etcdVersion()} (1 member, loopback, heartbeat ${ETCD_HEARTBEAT_MS} ms, election timeout ${ETCD_ELECTION_MS} ms)`,
      `lease TTL ${o.lease.ttlMs} ms, keepalive every ${LEASE_KEEPALIVE_INTERVAL_MS} ms, drift ρ ${o.lease.maxDriftRate}, margin ${o.lease.marginMs} ms`,
      `grantor tail ${etcdGrantorTailMs(o.lease).toFixed(1)} ms, lease poll ${o.leasePollIntervalMs} ms, request timeout ${o.requestTimeoutMs} ms`,
      `${VIEW_CHANGES} view changes after ${WARMUP_VIEW_CHANGES} warm-up; failover median of ${FAILOVER_TRIALS} (${failovers.map((f) => f.toFixed(0)).join(', ')} ms)`,
    ].join('; ');
    return {
      viewChangeP50Ms: percentile(timings, 50),
      viewChangeP99Ms: percentile(timings, 99),
      failoverMs: median(failovers),
      settings,
    };
  } finally {
    await server.stop();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchEtcd();
  console.log(`etcd view change: p50 ${r.viewChangeP50Ms.toFixed(2)} ms, p99 ${r.viewChangeP99Ms.toFixed(2)} ms`);
  console.log(`etcd failover: ${r.failoverMs.toFixed(0)} ms`);
  console.log(`settings: ${r.settings}`);
}
