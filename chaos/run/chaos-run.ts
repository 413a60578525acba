import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WaterbearError } from '../../libos-host/errors.js';
import { packageFile } from '../../libos-host/platform/package-files.js';
import { checkAvailability, type Availability } from '../checker/availability.js';
import { checkCounter, type CounterCheck } from '../checker/counter-checker.js';
import { checkKv, type KvCheck } from '../checker/kv-checker.js';
import { ChaosCluster } from '../cluster/chaos-cluster.js';
import { ViewMonitor } from '../cluster/view-monitor.js';
import { Nemesis } from '../nemesis/nemesis.js';
import { DEFAULT_TIMING, PROXY_FAULTS, generateSchedule, type ClockBound, type FaultSpec, type Schedule, type ScheduleTiming } from '../nemesis/schedule.js';
import type { ProxyStats } from '../proxy/fault-proxy.js';
import { Prng } from '../random/prng.js';
import { writeReport } from '../report/write-report.js';
import { History, historyLines, type ClusterEvent, type Op, type ViewSample } from '../workload/history.js';
import { WorkloadClient } from '../workload/workload-client.js';
import { COUNTER_KEY, counterWorkload, kvWorkload, type WorkloadName } from '../workload/workloads.js';

/** Test-only switches of the replication layer (read in replica/node/primary-lvm.ts). */
export const UNSAFE_RELEASE_EARLY_ENV = 'WATERBEAR_UNSAFE_TEST_RELEASE_EARLY';
export const UNSAFE_I_UNDERSTAND_ENV = 'WATERBEAR_UNSAFE_TEST_I_UNDERSTAND';

/** Longest wait for the first protected primary after the members start. */
export const STARTUP_TIMEOUT_MS = 60_000;
/** Longest wait for a whole cluster after every fault healed, before the final reads. */
export const RECOVERY_TIMEOUT_MS = 30_000;
/** Each key's final read is retried until it succeeds, for at most this long in all. */
export const FINAL_READS_TIMEOUT_MS = 30_000;
/** Default time budget of the linearizability search, over all keys. */
export const DEFAULT_CHECK_BUDGET_MS = 60_000;
/** A client pauses this long (randomised up to twice) after a failed or unknown operation. */
export const CLIENT_BACKOFF_MS = 50;

export interface ChaosOptions {
  /** The cluster file whose guest and replication settings are tested (default deploy/local/waterbear.yaml). */
  configPath?: string;
  seed: number;
  /** Workload-and-faults phase (ms); startup, recovery and final reads come on top. */
  durationMs: number;
  workload: WorkloadName;
  faults: FaultSpec[];
  clients?: number;
  keys?: number;
  /** Pause between a client's operations, random in [0, thinkMs]. */
  thinkMs?: number;
  opTimeoutMs?: number;
  /** Where run folders go (default chaos/reports in the package). */
  reportsDir?: string;
  /** Name of the run folder (default: time stamp, workload and seed). */
  runName?: string;
  /** Test-only: release output before acknowledgement in every replica (the deliberately unsafe build). */
  unsafeReleaseEarly?: boolean;
  checkBudgetMs?: number;
  timing?: ScheduleTiming;
  /** Each member in its own network namespace (root, ip, nft); see chaos/cluster/netns.ts. */
  netns?: boolean;
  /** Clock faults within the lease drift bound, beyond it, or both (default both). */
  clockBound?: ClockBound;
  /** Members' log level (WATERBEAR_LOG_LEVEL; default info); their stderr goes to <run>/logs/. */
  memberLogLevel?: string;
  /** Keep the members' data folders (default: removed). */
  keepData?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Command line to print for reproducing the run. */
  command?: string;
}

export type Verdict = 'pass' | 'fail' | 'unknown';

export interface ChaosSummary {
  formatVersion: 1;
  run: string;
  command: string;
  seed: number;
  workload: WorkloadName;
  faults: string[];
  durationMs: number;
  startedAt: string;
  unsafeReleaseEarly: boolean;
  verdict: Verdict;
  verdictLine: string;
  violations: string[];
  warnings: string[];
  timings: { startupMs: number; workloadMs: number; recoveryMs: number; finalReadsMs: number; checkMs: number; totalMs: number };
  window: { startMs: number; endMs: number };
  kv: Omit<KvCheck, 'keys'> & { keys: Array<Record<string, unknown>> } | null;
  counter: CounterCheck | null;
  availability: Availability;
  nemesis: { planned: number; injected: number; notes: string[] };
  cluster: { members: string[]; crashes: number; events: ClusterEvent[] };
  views: ViewSample[];
  proxies: Record<string, ProxyStats>;
}

export interface ChaosResult {
  summary: ChaosSummary;
  schedule: Schedule;
  ops: Op[];
  reportDir: string;
  exitCode: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/**
 * One chaos run: start the cluster under test, run the workload while the nemesis injects the
 * seeded schedule, heal everything, read every key, check the history and write the report.
 */
export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? (() => {});
  if (o.netns === true) {
    const proxied = o.faults.filter((f) => PROXY_FAULTS.includes(f.kind)).map((f) => f.kind);
    if (proxied.length > 0) {
      throw new WaterbearError('WB_CONFIG_INVALID', `--netns injects partitions with nftables and has no fault proxies: ${[...new Set(proxied)].join(', ')} need the proxies (run without --netns, or leave them out: --faults kill,pause,partition,storage,clock)`);
    }
  }
  const t0 = performance.now();
  const nowMs = (): number => performance.now() - t0;
  const startedAt = new Date().toISOString();
  const prng = new Prng(o.seed);
  const schedule = generateSchedule(prng.fork('schedule'), o.seed, o.durationMs, o.faults, o.timing ?? DEFAULT_TIMING, o.clockBound ?? 'both');
  const configPath = resolve(o.configPath ?? packageFile('deploy/local/waterbear.yaml'));
  const runName = o.runName ?? `${startedAt.replace(/[:.]/g, '-').replace('Z', '')}-${o.workload}-seed${o.seed}`;
  const reportDir = join(o.reportsDir ?? packageFile('chaos/reports'), runName);
  mkdirSync(reportDir, { recursive: true });
  writeFileSync(join(reportDir, 'schedule.json'), JSON.stringify(schedule, null, 2) + '\n');
  const dataDir = mkdtempSync(join(tmpdir(), 'wb-chaos-'));
  const events: ClusterEvent[] = [];
  const env: NodeJS.ProcessEnv = o.unsafeReleaseEarly === true ? { [UNSAFE_RELEASE_EARLY_ENV]: '1', [UNSAFE_I_UNDERSTAND_ENV]: '1' } : {};
  const cluster = await ChaosCluster.create({
    baseConfigPath: configPath, dir: reportDir, dataDir, prng, nowMs, env, memberLogLevel: o.memberLogLevel, netns: o.netns === true,
    onEvent: (e) => { events.push(e); if (e.kind === 'crash') log(`cluster: ${e.member} ${e.detail}`); },
  });
  const history = new History(nowMs);
  const workload = o.workload === 'kv' ? kvWorkload(o.keys ?? 3) : counterWorkload();
  const monitor = new ViewMonitor(cluster, nowMs);
  const nemesis = new Nemesis(cluster, monitor, nowMs, log);
  const clients: WorkloadClient[] = [];
  const timings = { startupMs: 0, workloadMs: 0, recoveryMs: 0, finalReadsMs: 0, checkMs: 0, totalMs: 0 };
  let window = { startMs: 0, endMs: 0 };
  let recovered = false;
  // Ctrl-C or SIGTERM: stop the members (by PID) and remove proxies and namespaces before exiting.
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`${sig}: stopping the members and cleaning up`);
    nemesis.stop();
    void cluster.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const host = (attempt: number): string => cluster.serviceHost(monitor.latest.primary?.replicaId ?? null, attempt);
  try {
    cluster.start();
    monitor.start();
    log(`cluster: ${cluster.describe()}`);
    if (!(await monitor.waitHealthy(STARTUP_TIMEOUT_MS))) {
      throw new WaterbearError('WB_TIMEOUT', `the cluster under test had no protected primary within ${STARTUP_TIMEOUT_MS} ms; see the member logs in ${join(reportDir, 'logs')}`);
    }
    timings.startupMs = nowMs();
    log(`cluster: protected primary ${monitor.latest.primary?.replicaId} after ${Math.round(timings.startupMs)} ms; workload ${o.workload} for ${o.durationMs / 1000} s, ${schedule.steps.length} faults planned`);

    // ---- workload and faults ----
    const start = nowMs();
    const end = start + o.durationMs;
    window = { startMs: start, endMs: end };
    const nClients = o.clients ?? 5;
    const think = o.thinkMs ?? 5;
    const loops: Array<Promise<void>> = [];
    for (let p = 0; p < nClients; p++) {
      const g = prng.fork(`client:${p}`);
      const c = new WorkloadClient(p, cluster.servicePort, history, { opTimeoutMs: o.opTimeoutMs, host });
      clients.push(c);
      loops.push((async () => {
        while (nowMs() < end) {
          const op = await c.run(workload.next(g, p));
          if (op.status !== 'ok') await sleep(CLIENT_BACKOFF_MS * (1 + g.float()));
          else if (think > 0) await sleep(g.float() * think);
        }
      })());
    }
    await nemesis.run(schedule.steps, end);
    await Promise.all(loops);
    for (const c of clients) c.close();
    timings.workloadMs = nowMs() - start;

    // ---- heal, recover, final reads ----
    nemesis.healAll();
    const healedAt = nowMs();
    recovered = await monitor.waitHealthy(RECOVERY_TIMEOUT_MS);
    timings.recoveryMs = nowMs() - healedAt;
    log(recovered ? `recovery: cluster whole ${Math.round(timings.recoveryMs)} ms after the last fault healed` : `recovery: cluster NOT whole after ${RECOVERY_TIMEOUT_MS} ms`);
    const readsAt = nowMs();
    const finalClient = new WorkloadClient(1000, cluster.servicePort, history, { opTimeoutMs: o.opTimeoutMs, host });
    for (const key of workload.keys) {
      while (nowMs() - readsAt < FINAL_READS_TIMEOUT_MS) {
        const op = await finalClient.run({ f: 'read', key }, true);
        if (op.status === 'ok') break;
        await sleep(100);
      }
    }
    finalClient.close();
    timings.finalReadsMs = nowMs() - readsAt;
  } finally {
    nemesis.stop();
    for (const c of clients) c.close();
    monitor.stop();
    await cluster.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (o.keepData !== true) rmSync(dataDir, { recursive: true, force: true });
  }
  history.closePending();

  // ---- check ----
  const checkStart = nowMs();
  const ops = history.ops;
  const violations: string[] = [];
  const warnings: string[] = [...nemesis.notes];
  let kv: KvCheck | null = null;
  let counter: CounterCheck | null = null;
  if (o.workload === 'kv') {
    kv = checkKv(ops, { budgetMs: o.checkBudgetMs ?? DEFAULT_CHECK_BUDGET_MS });
    for (const k of kv.keys) {
      if (k.verdict === 'not-linearizable') violations.push(`key ${k.key}: not linearizable — op ${k.failedOp?.id} (${describeOp(k.failedOp)}) cannot be placed; state could be ${k.statesAtFailure?.join(' or ')}`);
      if (k.verdict === 'unknown') warnings.push(`key ${k.key}: linearizability unknown (${k.reason})`);
    }
    for (const l of kv.lostWrites.slice(0, 5)) violations.push(`lost acknowledged write: op ${l.write.id} SET ${l.write.key} ${l.write.value} (ok at ${ms(l.write.completeMs)}) but the final read returned ${JSON.stringify(l.finalRead.result)}, written by op ${l.origin?.id ?? '—'} which completed before it began`);
    if (kv.lostWrites.length > 5) violations.push(`… ${kv.lostWrites.length - 5} more lost acknowledged writes`);
    for (const p of kv.phantomReads.slice(0, 5)) violations.push(`phantom value: op ${p.id} ${p.f} ${p.key} returned ${JSON.stringify(p.result)}, which no write produced`);
    if (kv.keysWithoutFinalRead.length > 0) violations.push(`no successful final read of ${kv.keysWithoutFinalRead.join(', ')}: the service did not recover after every fault healed`);
  } else {
    counter = checkCounter(ops, COUNTER_KEY);
    if (counter.valid === false) violations.push(...counter.problems.map((p) => `counter: ${p}`));
    if (counter.finalValue === null) violations.push('no successful final read of the counter: the service did not recover after every fault healed');
  }
  if (!recovered) warnings.push(`the cluster was not whole (protected primary, every member back) ${RECOVERY_TIMEOUT_MS / 1000} s after every fault healed`);
  if (cluster.crashes > 0) warnings.push(`${cluster.crashes} member exit(s) the harness did not cause: see cluster events and logs/`);
  const availability = checkAvailability(ops, nemesis.events, monitor.samples, window);
  timings.checkMs = nowMs() - checkStart;
  timings.totalMs = nowMs();
  const linUnknown = kv !== null && kv.linearizable === 'unknown';
  const verdict: Verdict = violations.length > 0 ? 'fail' : linUnknown || (counter !== null && counter.valid === 'unknown') ? 'unknown' : 'pass';
  const a = availability;
  const verdictLine = `${verdict.toUpperCase()}: ${o.workload} seed ${o.seed}, ${Math.round(o.durationMs / 1000)} s, ${nemesis.events.length} faults` +
    ` — ${a.ok}/${a.ops} ok (${(a.okShare * 100).toFixed(1)}%), ${a.unknown} unknown, longest gap ${(a.longestGapMs / 1000).toFixed(2)} s` +
    (verdict === 'fail' ? ` — ${violations.length} violation(s): ${violations[0]}` : verdict === 'unknown' ? ' — checker inconclusive' : kv !== null ? ' — linearizable, no lost writes' : ' — counter invariant holds');
  const summary: ChaosSummary = {
    formatVersion: 1, run: runName,
    command: o.command ?? `waterbear chaos --seed ${o.seed} --duration ${o.durationMs / 1000}s --workload ${o.workload} --faults ${schedule.faults.join(',')}`,
    seed: o.seed, workload: o.workload, faults: schedule.faults, durationMs: o.durationMs, startedAt,
    unsafeReleaseEarly: o.unsafeReleaseEarly === true, verdict, verdictLine, violations, warnings, timings, window,
    kv: kv === null ? null : { ...kv, keys: kv.keys.map((k) => ({ ...k })) },
    counter, availability,
    nemesis: { planned: schedule.steps.length, injected: nemesis.events.length, notes: nemesis.notes },
    cluster: { members: cluster.memberIds, crashes: cluster.crashes, events },
    views: monitor.samples,
    proxies: cluster.mesh.stats(),
  };
  writeFileSync(join(reportDir, 'history.jsonl'), historyLines(ops, nemesis.events).join('\n') + '\n');
  writeFileSync(join(reportDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  writeReport(reportDir, summary, schedule, ops, nemesis.events);
  return { summary, schedule, ops, reportDir, exitCode: verdict === 'pass' ? 0 : verdict === 'fail' ? 1 : 3 };
}

export function describeOp(op: Op | undefined): string {
  if (op === undefined) return '?';
  const what = op.f === 'write' ? `SET ${op.key} ${op.value}` : op.f === 'read' ? `GET ${op.key}` : `INCR ${op.key}`;
  const out = op.status === 'ok' ? (op.f === 'write' ? 'OK' : JSON.stringify(op.result ?? null)) : op.status;
  return `${what} → ${out}, ${ms(op.invokeMs)}–${ms(op.completeMs)}`;
}

function ms(t: number | null): string { return t === null ? '∞' : `${(t / 1000).toFixed(3)} s`; }
