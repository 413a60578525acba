// `waterbear status`, `waterbear join` and `waterbear action` against real member processes on loopback.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../bench/support/servers.js';
import { formatClusterStatus } from '../../cli/commands/status.js';
import type { ClusterState, MemberState } from '../../dashboard/model.js';
import { runWaterbear, WATERBEAR } from '../helpers/cli.js';
import { startTestCluster, until, type TestCluster } from '../helpers/cluster.js';
import { REPO } from '../helpers/lvm.js';

const TOKEN = 'join-test-token';

/** A cluster file whose members nobody started (yet). */
async function idleClusterFile(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-join-'));
  const [svc, pa, pb, pw] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const file = join(dir, 'waterbear.yaml');
  writeFileSync(file, `cluster: idle
guest: { module: ${REPO}guests/kv.wasm }
listen: [127.0.0.1:${svc}]
replicas:
  - { id: a, address: 127.0.0.1:${pa}, dataDir: ${dir}/a }
  - { id: b, address: 127.0.0.1:${pb}, dataDir: ${dir}/b }
witnesses:
  - { id: w, address: 127.0.0.1:${pw}, dataDir: ${dir}/w }
`);
  return file;
}

/** `waterbear ARGS` in the background, its output collected; the test stops it by PID. */
function start(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; err: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [WATERBEAR, ...args], {
    env: { ...process.env, WATERBEAR_CACHE_DIR: join(REPO, '.cache/test-images'), WATERBEAR_LOG_LEVEL: 'error', ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, err: () => err, exited };
}

function killOnTeardown(t: { teardown(f: () => void): void }, child: ChildProcess): void {
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
}

test('status, join and action check their arguments: usage errors exit with 2, --help with 0', async (t) => {
  for (const cmd of ['status', 'join', 'action']) {
    const r = await runWaterbear([cmd]);
    t.is(r.code, 2, cmd);
    t.regex(r.stderr, /WB_CONFIG_INVALID/);
    const help = await runWaterbear([cmd, '--help']);
    t.is(help.code, 0);
    t.regex(help.stdout, /exit code/i);
  }
  const file = await idleClusterFile();
  const badWait = await runWaterbear(['status', '--config', file, '--wait-protected', 'soon']);
  t.is(badWait.code, 2);
  t.regex(badWait.stderr, /--wait-protected must be a duration/);
  const badTimeout = await runWaterbear(['join', '--config', file, '--id', 'b', '--timeout', '-1s']);
  t.is(badTimeout.code, 2);
});

test('status of a cluster nobody runs: every member down, NO PRIMARY, exit code 1', async (t) => {
  const r = await runWaterbear(['status', '--config', await idleClusterFile()]);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stdout, /NO PRIMARY/);
  t.is(r.stdout.split('\n').filter((l) => /^[abw] .* down /.test(l)).length, 3, r.stdout);
  t.notRegex(r.stdout, /Resolution note/);
});

test('join gives up after --timeout when no coordinator answers, stops its replica and says why', async (t) => {
  const r = await runWaterbear(['join', '--config', await idleClusterFile(), '--id', 'b', '--timeout', '1s'], { env: { WATERBEAR_LOG_LEVEL: 'error' } });
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /b is not a backup of the view after .* the coordinator has not answered/);
});

test('join never creates a cluster: with a coordinator but no view it fails with WB_JOIN_FAILED', async (t) => {
  const file = await idleClusterFile();
  const w = start(['witness', '--config', file, '--id', 'w']);
  killOnTeardown(t, w.child);
  // Witness w and the joining b make a Raft quorum of the three voters, so the view can be read: none.
  const r = await runWaterbear(['join', '--config', file, '--id', 'b', '--timeout', '60s']);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /has no view yet.*\[WB_JOIN_FAILED\]/s);
  w.child.kill('SIGTERM');
  await w.exited;
});

test('join of the replica the first view names as primary, before anyone served, starts the guest and says so', async (t) => {
  const file = await idleClusterFile();
  const w = start(['witness', '--config', file, '--id', 'w']);
  killOnTeardown(t, w.child);
  const b = start(['replica', '--config', file, '--id', 'b']); // creates view 1: primary a, backup b
  killOnTeardown(t, b.child);
  await until('b in view 1', () => /serving on .* as (backup|joining|idle)/.test(b.err()), 60_000);
  const a = start(['join', '--config', file, '--id', 'a', '--timeout', '60s']);
  killOnTeardown(t, a.child);
  await until('a starting the guest', () => /a is primary of view 1: the cluster's first view names it/.test(a.err()), 60_000);
  t.notRegex(a.err(), /took over/);
  for (const p of [a, b, w]) p.child.kill('SIGTERM');
  t.deepEqual(await Promise.all([a.exited, b.exited, w.exited]), [0, 0, 0]);
});

test.serial('a killed backup comes back with join: status goes UNPROTECTED (3), join reports progress, then PROTECTED (0) with the data; removed by action, refused, added, switched over to', async (t) => {
  // A low pre-copy threshold: the small KV guest rejoins by pre-copy, so join shows its progress.
  const c: TestCluster = await startTestCluster({ restart: false, dashboards: true, env: { WATERBEAR_ADMIN_TOKEN: TOKEN }, replication: '{ precopyMinBytes: 64KiB }' });
  t.teardown(() => c.stop());
  const file = join(c.dir, 'waterbear.yaml');
  const p = await c.protectedPrimary();
  const backup = p.backups[0];
  const client = await c.client();
  t.is(await client.call('SET', 'joined', 'yes'), 'OK');
  client.close();

  const ok = await runWaterbear(['status', '--config', file, '--wait-protected', '30s']);
  t.is(ok.code, 0, ok.stdout);
  t.regex(ok.stdout, new RegExp(`PROTECTED: primary ${p.replicaId} in view \\d+, backups ${backup}`));

  process.kill(c.cluster.pid(backup)!, 'SIGKILL');
  await until('status exit code 3 (UNPROTECTED)', async () => (await runWaterbear(['status', '--config', file])).code === 3, 30_000);

  const j = start(['join', '--config', file, '--id', backup, '--timeout', '60s']);
  killOnTeardown(t, j.child);
  await until('join reporting the new view', () => new RegExp(`${backup} is a backup of view \\d+: primary ${p.replicaId} is protected`).test(j.err()), 60_000);
  t.regex(j.err(), new RegExp(`joining view \\d+: asking primary ${p.replicaId} to protect ${backup}`));
  t.regex(j.err(), /accepted: receiving the guest's image/);
  t.regex(j.err(), /pre-copy: \d+\.\d MiB of the guest's memory received/);
  const again = await runWaterbear(['status', '--config', file, '--wait-protected', '30s']);
  t.is(again.code, 0, again.stdout);
  t.regex(again.stdout, new RegExp(`^${backup} +replica .* backup +\\d+ +\\d+ +yes`, 'm'));
  const reader = await c.client();
  t.is(await reader.call('GET', 'joined'), 'yes');
  reader.close();

  // An operator removes it (waterbear action); a join is then refused with the primary's reason
  // until it is added back, and then succeeds; a switchover hands the primary role to it.
  const asAdmin = { env: { WATERBEAR_ADMIN_TOKEN: TOKEN } };
  const wrongToken = await runWaterbear(['action', 'checkpoint', '--config', file], { env: { WATERBEAR_ADMIN_TOKEN: 'nope' } });
  t.is(wrongToken.code, 1);
  t.regex(wrongToken.stderr, /WB_UNAUTHORIZED/);
  const removed = await runWaterbear(['action', 'remove-backup', '--config', file, '--replica', backup], asAdmin);
  t.is(removed.code, 0, removed.stderr);
  t.like(JSON.parse(removed.stdout) as object, { action: 'remove-backup', replica: p.replicaId });
  j.child.kill('SIGINT');
  t.is(await j.exited, 0, 'SIGINT stops a joined replica like `waterbear replica`');
  const refused = await runWaterbear(['join', '--config', file, '--id', backup, '--timeout', '3s']);
  t.is(refused.code, 1, refused.stderr);
  t.regex(refused.stderr, new RegExp(`primary ${p.replicaId} refused: ${backup} was removed by an operator`));

  const added = await runWaterbear(['action', 'add-backup', '--config', file, '--replica', backup], asAdmin);
  t.is(added.code, 0, added.stderr);
  const j2 = start(['join', '--config', file, '--id', backup, '--timeout', '60s']);
  killOnTeardown(t, j2.child);
  await until('the second join', () => new RegExp(`${backup} is a backup of view \\d+`).test(j2.err()), 60_000);
  t.is((await runWaterbear(['status', '--config', file, '--wait-protected', '30s'])).code, 0);
  await until('a switchover to the joined replica', async () => (await runWaterbear(['action', 'switchover', '--config', file, '--target', backup], asAdmin)).code === 0, 30_000);
  const after = await runWaterbear(['status', '--config', file, '--wait-protected', '30s']);
  t.regex(after.stdout, new RegExp(`primary ${backup} in view`), after.stdout);
  j2.child.kill('SIGINT');
  t.is(await j2.exited, 0);
});

test('action checks its arguments against the cluster file before asking anyone', async (t) => {
  const file = await idleClusterFile();
  const env = { env: { WATERBEAR_ADMIN_TOKEN: TOKEN } };
  const noName = await runWaterbear(['action', '--config', file], env);
  t.is(noName.code, 2);
  t.regex(noName.stderr, /name one action of checkpoint, switchover/);
  const badTarget = await runWaterbear(['action', 'switchover', '--config', file, '--target', 'zz'], env);
  t.is(badTarget.code, 2);
  t.regex(badTarget.stderr, /switchover needs --target: one of the cluster's replicas \(a, b\)/);
  const noToken = await runWaterbear(['action', 'checkpoint', '--config', file], { env: { WATERBEAR_ADMIN_TOKEN: '' } });
  t.is(noToken.code, 2);
  t.regex(noToken.stderr, /no admin token/);
  const nobody = await runWaterbear(['action', 'checkpoint', '--config', file], env);
  t.is(nobody.code, 1);
  t.regex(nobody.stderr, /no replica answers as primary.*\[WB_NOT_LEADER\]/);
});

test('the status table: one row per member, lag and reasons in words', (t) => {
  const member = (m: Partial<MemberState>): MemberState => ({
    id: 'x', kind: 'replica', address: '127.0.0.1:1', dashboard: null, up: true, role: 'backup', view: 4, epoch: 9, inView: true,
    lagEpochs: null, lagSeconds: null, inSync: null, lastSeenAt: 1, error: null, serviceParked: false, ...m,
  });
  const state: ClusterState = {
    cluster: 'c', at: 1, view: 4, primary: 'a', backups: ['b'], protection: 'PROTECTED', primaryNumbers: null, servedBy: null, admin: { enabled: false }, startedAt: 1,
    members: [
      member({ id: 'a', role: 'primary', serviceParked: true }),
      member({ id: 'b', lagEpochs: 3, lagSeconds: 1.5, inSync: false }),
      member({ id: 'c', up: false, role: 'down', view: 0, error: 'connect ECONNREFUSED. Resolution note: ' }),
      member({ id: 'w', kind: 'witness', role: 'witness', view: 0 }),
    ],
  };
  const out = formatClusterStatus(state);
  t.regex(out, /^cluster "c": PARKED: primary a of view 4 lost its coordinator lease and freed the service address; the service is unavailable/m);
  t.regex(out, /^a +replica .* primary .*service address freed/m);
  t.regex(out, /^b +replica .* backup +4 +9 +yes +3 epochs, 1\.50 s \(not in sync\)$/m);
  t.regex(out, /^c +replica .* down +- +- +- +- +not answering: connect ECONNREFUSED\.$/m);
  t.regex(out, /^w +witness .* witness +- +- +- +-$/m);
  t.regex(formatClusterStatus({ ...state, primary: null, protection: 'NO PRIMARY', backups: [] }), /NO PRIMARY: no replica answers as primary/);
  const serving = { ...state, members: state.members.map((m) => ({ ...m, serviceParked: false })) };
  t.regex(formatClusterStatus(serving), /^cluster "c": PROTECTED: primary a in view 4, backups b$/m);
});
