import { spawn, spawnSync } from 'node:child_process';
import test from 'ava';
import { NetnsNetwork, netnsProblem, tagOf } from '../../chaos/cluster/netns.js';
import { passingScenario } from './helpers/scenario.js';

/**
 * --netns needs root, ip and nft. Locally a missing requirement skips loudly; in CI
 * (WB_REQUIRE_TOOLS=1, .ci/run installs iproute2 and nftables and runs as root) it FAILS.
 */
const problem = netnsProblem();
const required = process.env.WB_REQUIRE_TOOLS === '1';
if (problem !== null && !required) console.log(`skipping the --netns scenario: ${problem}`);
const netnsTest = problem === null || required ? test.serial : test.serial.skip;

/**
 * Every member in its own network namespace with its own address; the primary is killed, the
 * backup paused, and primary and backup are cut apart by nftables drop rules (real packet loss,
 * real SYN timeouts). Every namespace, veth and the bridge are gone afterwards.
 * Replay: waterbear chaos --netns --seed 3 --duration 20s --faults kill:primary,pause:backup,partition:primary-backup
 */
netnsTest('in network namespaces: kill, pause and an nftables partition — linearizable, nothing lost, namespaces removed', async (t) => {
  t.timeout(180_000);
  t.is(problem, null, `--netns cannot run here: ${problem}`);
  const r = await passingScenario(t, {
    seed: 3, durationMs: 20_000, faults: 'kill:primary,pause:backup,partition:primary-backup', netns: true,
    timing: { gapMs: [500, 1500], holdMs: { kill: [500, 1000], pause: [1000, 2000], partition: [1500, 3000] }, recoveryMs: 2000 },
  });
  t.deepEqual([...new Set(r.summary.availability.faults.map((f) => f.kind))].sort(), ['kill', 'partition', 'pause']);
  t.regex(readableCluster(r.reportDir), /address: 10\.199\.\d+\.\d+:7101/, 'members have their own addresses');
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(`wbchaos-${process.pid}-`));
  t.deepEqual(left, [], 'the run removed its namespaces');
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
  t.notRegex(links, new RegExp(`wbc${tagOf(process.pid)}(br|h\\d)`), 'the run removed its bridge and veths');
});

function readableCluster(dir: string): string {
  return spawnSync('cat', [`${dir}/cluster.yaml`], { encoding: 'utf8' }).stdout;
}

/**
 * What a harness killed by SIGKILL leaves (its namespaces and bridge) is removed by the next run;
 * namespaces of a harness that still runs are left alone.
 */
netnsTest('a run removes the namespaces and bridge of a harness that died, and keeps those of one still running', (t) => {
  const deadPid = 4194303; // the highest possible PID, not running
  const alive = spawn('sleep', ['60'], { stdio: 'ignore' });
  const [deadNs, liveNs, deadBridge] = [`wbchaos-${deadPid}-a`, `wbchaos-${alive.pid}-a`, `wbc${tagOf(deadPid)}br`];
  const list = (): string => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  const links = (): string => spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
  try {
    for (const ns of [deadNs, liveNs]) t.is(spawnSync('ip', ['netns', 'add', ns]).status, 0);
    t.is(spawnSync('ip', ['link', 'add', deadBridge, 'type', 'bridge']).status, 0);
    NetnsNetwork.create(['a']).destroy();
    t.false(list().includes(deadNs), 'the dead harness\'s namespace is removed');
    t.false(links().includes(`${deadBridge}:`), 'and its bridge');
    t.true(list().includes(liveNs), 'a running harness\'s namespace stays');
  } finally {
    alive.kill('SIGKILL');
    for (const ns of [deadNs, liveNs]) spawnSync('ip', ['netns', 'del', ns]);
    spawnSync('ip', ['link', 'del', deadBridge]);
  }
});
