import { WaterbearError } from '../../libos-host/errors.js';
import { checkRange, parseDurationMs } from '../../libos-host/units.js';
import { CLOCK_BOUNDS, FAULT_KINDS, parseFaults, type ClockBound } from '../../chaos/nemesis/schedule.js';
import { netnsProblem } from '../../chaos/cluster/netns.js';
import { MAX_SEED, randomSeed } from '../../chaos/random/prng.js';
import { DEFAULT_CHECK_BUDGET_MS, runChaos } from '../../chaos/run/chaos-run.js';
import { WORKLOAD_NAMES, type WorkloadName } from '../../chaos/workload/workloads.js';
import { parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';

export const CHAOS_USAGE = `usage: waterbear chaos [--config waterbear.yaml] [--seed N] [--duration 60s]
                       [--workload kv|counter] [--faults kill,pause,partition,corrupt,...]

Test a replicated cluster the way Jepsen does: start the cluster file's members as real processes
on loopback (free ports, a temp data folder, a fault proxy on every link between members), run a
workload of clients against the service while a seeded nemesis injects faults that come and heal,
then heal everything, read every key and check the history. Prints the seed and a one-line
verdict; writes chaos/reports/<run>/ (history.jsonl, schedule.json, summary.json, report.html).

  --config FILE        cluster file to test (default: deploy/local/waterbear.yaml; its guest must
                       speak the Redis protocol, like guests/kv.wasm). Addresses and data folders
                       are replaced by free loopback ports and a temp folder.
  --seed N             0..${MAX_SEED}; the same seed gives the same fault schedule and client choices
                       (default: random, printed)
  --duration D         how long the workload runs under faults (default 60s; e.g. 30m for a soak)
  --workload W         kv: SET of unique values, GET, INCR on a few keys, checked for
                       linearizability (per key) and lost writes; counter: INCR on one key, checked
                       for final = acknowledged + at most unknown, no duplicates, never backwards
  --faults LIST        comma-separated, each optionally kind:target (default: all). Kinds:
                       ${FAULT_KINDS.join(', ')}
                       groups: all = kill … corrupt (the process and network faults);
                       storage = disk-full, fsync, slow-disk. Everything: all,storage,clock
                       targets: kill/pause/clock → primary|backup|witness; partition → primary-backup|
                       isolate-primary|isolate-backup|primary-to-backup|backup-to-primary;
                       network faults → all-links|primary-links; corrupt also → bulk (only
                       chunks ≥ 4 KiB: checkpoint data, not coordination messages);
                       disk-full/fsync/slow-disk → backup (its checkpoint store fails or is slow)
  --clock-bound B      clock faults within the drift bound leases assume (respect: forward jumps,
                       drift ≤ 1%), beyond it (exceed: backward jumps, 1.5-4x fast, 0.25-0.67x
                       slow), or both (default)
  --clients N          concurrent clients (default 5)
  --keys N             keys of the kv workload (default 3)
  --check-budget D     time the linearizability search may take before answering unknown (default ${DEFAULT_CHECK_BUDGET_MS / 1000}s)
  --reports DIR        where run folders go (default chaos/reports)
  --keep-data          keep the members' data folders
  --member-log-level L members' WATERBEAR_LOG_LEVEL (default info); logs in <run>/logs/
  --unsafe-test-release-early
                       TEST ONLY: run the members with output released before acknowledgement
                       (the deliberately unsafe build) to see the checkers catch it
  --netns              each member in its own network namespace with its own address (10.199.K.0/24
                       on a bridge the harness creates and removes); partitions drop packets with
                       nftables. Needs root, ip and nft (Debian: iproute2, nftables). Faults:
                       kill, pause, partition, storage, clock (no proxies: no delay/drop/…)

Exit code: 0 pass, 1 a violation was found, 3 inconclusive (a checker ran out of budget), 2 usage.`;

/** The default --faults with --netns: everything that needs no fault proxy. */
const NETNS_DEFAULT_FAULTS = 'kill,pause,partition,storage,clock';

/** The command a report prints to replay this run: every option that shapes it (not where reports go). */
export function replayCommand(values: Partial<Record<'config' | 'duration' | 'faults' | 'clients' | 'keys' | 'check-budget' | 'clock-bound', string>> & { netns?: boolean; 'unsafe-test-release-early'?: boolean }, seed: number, workload: string): string {
  return ['waterbear chaos', ...(values.config !== undefined ? ['--config', values.config] : []), '--seed', String(seed),
    '--duration', values.duration ?? '60s', '--workload', workload, '--faults', values.faults ?? (values.netns === true ? NETNS_DEFAULT_FAULTS : 'all'),
    ...(values.clients !== undefined ? ['--clients', values.clients] : []), ...(values.keys !== undefined ? ['--keys', values.keys] : []),
    ...(values['check-budget'] !== undefined ? ['--check-budget', values['check-budget']] : []),
    ...(values['clock-bound'] !== undefined ? ['--clock-bound', values['clock-bound']] : []),
    ...(values.netns === true ? ['--netns'] : []), ...(values['unsafe-test-release-early'] === true ? ['--unsafe-test-release-early'] : [])].join(' ');
}

/** `waterbear chaos` */
export async function chaosCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, {
    config: { type: 'string' }, seed: { type: 'string' }, duration: { type: 'string' }, workload: { type: 'string' },
    faults: { type: 'string' }, clients: { type: 'string' }, keys: { type: 'string' }, 'check-budget': { type: 'string' },
    reports: { type: 'string' }, 'clock-bound': { type: 'string' }, 'member-log-level': { type: 'string' }, 'keep-data': { type: 'boolean' }, 'unsafe-test-release-early': { type: 'boolean' },
    netns: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  }, 'chaos');
  if (values.help === true) { io.out(CHAOS_USAGE + '\n'); return 0; }
  if (values.netns === true) {
    const problem = netnsProblem();
    if (problem !== null) { io.err(`waterbear chaos: --netns ${problem}\n`); return 2; }
  }
  const int = (v: string | undefined, def: number, name: string, min: number, max: number): number => {
    if (v === undefined) return def;
    if (!/^\d+$/.test(v)) throw new WaterbearError('WB_CONFIG_INVALID', `--${name} must be an integer between ${min} and ${max}: got "${v}"`);
    return checkRange(Number(v), min, max, `--${name}`);
  };
  const seed = values.seed === undefined ? randomSeed() : int(values.seed, 0, 'seed', 0, MAX_SEED);
  const durationMs = checkRange(values.duration === undefined ? 60_000 : parseDurationMs(values.duration, '--duration'), 5_000, 24 * 3600_000, '--duration', (ms) => `${ms / 1000} s`);
  const workload = (values.workload ?? 'kv') as WorkloadName;
  if (!WORKLOAD_NAMES.includes(workload)) {
    const hint = values.workload === 'bank' ? ' (the KV guest has no MULTI, so the invariant workload is a counter)' : '';
    throw new WaterbearError('WB_CONFIG_INVALID', `--workload must be ${WORKLOAD_NAMES.join(' or ')}: got "${values.workload}"${hint}`);
  }
  const faults = parseFaults(values.faults ?? (values.netns === true ? NETNS_DEFAULT_FAULTS : 'all'));
  const clockBound = (values['clock-bound'] ?? 'both') as ClockBound;
  if (!CLOCK_BOUNDS.includes(clockBound)) throw new WaterbearError('WB_CONFIG_INVALID', `--clock-bound must be ${CLOCK_BOUNDS.join(', ')}: got "${values['clock-bound']}"`);
  const checkBudgetMs = values['check-budget'] === undefined ? DEFAULT_CHECK_BUDGET_MS
    : checkRange(parseDurationMs(values['check-budget'], '--check-budget'), 100, 24 * 3600_000, '--check-budget', (ms) => `${ms} ms`);
  const unsafe = values['unsafe-test-release-early'] === true;
  const command = replayCommand(values, seed, workload);
  io.out(`waterbear chaos: seed ${seed}\n`);
  if (unsafe) io.err('waterbear chaos: UNSAFE TEST BUILD: members release output before acknowledgement; the checkers should report violations\n');
  const result = await runChaos({
    configPath: values.config, seed, durationMs, workload, faults, checkBudgetMs, command, clockBound, netns: values.netns === true,
    clients: int(values.clients, 5, 'clients', 1, 64), keys: int(values.keys, 3, 'keys', 1, 100),
    reportsDir: values.reports, memberLogLevel: values['member-log-level'], keepData: values['keep-data'] === true, unsafeReleaseEarly: unsafe,
    log: (line) => io.err(`  ${line}\n`),
  });
  io.out(`waterbear chaos: ${result.summary.verdictLine}\n`);
  io.out(`waterbear chaos: report ${result.reportDir}/report.html\n`);
  return result.exitCode;
}
