import test from 'ava';
import type { ClusterState } from '../../dashboard/model.js';
import { runWaterbear, startWaterbear as start } from '../helpers/cli.js';
import { clusterFileNotRunning, until } from '../helpers/cluster.js';

test('waterbear dashboard needs --config: usage error with exit code 2', async (t) => {
  const r = await runWaterbear(['dashboard']);
  t.is(r.code, 2);
  t.regex(r.stderr, /WB_CONFIG_INVALID/);
  const help = await runWaterbear(['dashboard', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /--admin-token/);
});

test('waterbear dashboard serves the cluster state over HTTP and stops on SIGINT', async (t) => {
  const { file } = await clusterFileNotRunning('cli');
  const d = start(['dashboard', '--config', file, '--listen', '127.0.0.1:0']);
  t.teardown(() => { if (d.child.exitCode === null) d.child.kill('SIGKILL'); });
  const url = await until('the dashboard URL', () => /on (http:\/\/\S+\/)/.exec(d.out())?.[1] ?? null, 20_000);
  t.regex(d.out(), /actions disabled/);
  const c = await (await fetch(`${url}api/cluster`)).json() as ClusterState;
  t.is(c.cluster, 'cli');
  t.is(c.servedBy, null);
  t.is((await fetch(url)).status, 200, 'the bundled UI is served');
  d.child.kill('SIGINT');
  t.is(await d.exited, 0);
});

test('waterbear up starts the dashboards with the cluster and prints their URLs', async (t) => {
  const { file } = await clusterFileNotRunning('cli', { dashboards: true });
  const up = start(['up', '--config', file]);
  t.teardown(() => { if (up.child.exitCode === null) up.child.kill('SIGKILL'); });
  await until('the cluster is up', () => up.out().includes('dashboard:') || null, 60_000);
  const urls = [...up.out().matchAll(/(http:\/\/127\.0\.0\.1:\d+\/)#token=([0-9a-f]+)/g)];
  t.is(urls.length, 2);
  for (const [, url, token] of urls) {
    const c = await until(`${url} answers`, async () => (await (await fetch(`${url}api/cluster`)).json()) as ClusterState, 20_000);
    t.true(c.admin.enabled);
    // The printed token works: a bad action body is refused for its body, not its token.
    const r = await fetch(`${url}api/actions/switchover`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{}' });
    t.is(r.status, 400);
  }
  // A member that dies is restarted and reported; stopping the cluster reports no restarts.
  const witnessPid = Number(/w \(witness, pid (\d+)\)/.exec(up.out())?.[1]);
  t.true(witnessPid > 0, up.out());
  process.kill(witnessPid, 'SIGKILL'); // a grandchild this test started, by the PID `up` printed
  await until('the restart is reported', () => up.err().includes('w exited (SIGKILL); restarted it') || null, 20_000);
  up.child.kill('SIGINT');
  t.is(await up.exited, 0);
  const afterStop = up.err().slice(up.err().indexOf('stopping the cluster'));
  t.false(/restart/.test(afterStop), `stopping reported restarts:\n${up.err()}`);
});
