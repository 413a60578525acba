/**
 * `waterbear witness`: three witnesses form a Raft group over gRPC and commit; SIGTERM and SIGINT stop
 * them cleanly; bad usage exits with code 2; a full disk exits with code 75 (restart me).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import test, { type ExecutionContext } from 'ava';
import { createCoordClient, header, type ProposeReply, type StatusReply } from '../../../../replica/coord/raft-driver/raft-wire.js';
import { encodeViewProposal } from '../../../../replica/coord/view-state-machine.js';
import { freePorts } from './helpers/member-cluster.js';
import { fillDisk, smallTmpfs } from '../../../helpers/small-disk.js';

const CLI = fileURLToPath(new URL('./fixtures/waterbear-cli.ts', import.meta.url));

interface Running { child: ChildProcess; stdout: string; stderr: string; exited: Promise<number | string | null> }

function start(t: ExecutionContext, args: string[]): Running {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'witness', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const r: Running = { child, stdout: '', stderr: '', exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal))) };
  child.stdout!.on('data', (d: Buffer) => { r.stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { r.stderr += d.toString(); });
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  return r;
}

async function until(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // A slow answer under load is "not yet", not a failure; only the overall bound fails the test.
    if (await Promise.resolve().then(check).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function bounded<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);
}

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-witness-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test.serial('three witnesses started with --peers elect a leader, commit a view, and stop cleanly on SIGTERM', async (t) => {
  const dir = tempDir(t);
  const ports = await freePorts(3);
  const ids = ['a', 'b', 'w'];
  const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(',');
  const procs = ids.map((id) => start(t, ['--id', id, '--peers', peers, '--data-dir', join(dir, id), '--cluster', 'wt']));
  for (const [i, p] of procs.entries()) {
    await until(`${ids[i]} ready line`, 20_000, () => p.stdout.includes('\n'));
    t.regex(p.stdout, new RegExp(`^waterbear witness ${ids[i]}: coordinator member of cluster "wt" serving on 127\\.0\\.0\\.1:${ports[i]} `));
    t.is(p.stdout.split('\n').length, 2, 'exactly one line');
  }
  const clients = ports.map((port) => createCoordClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()));
  t.teardown(() => clients.forEach((c) => c.close()));
  const status = (i: number): Promise<StatusReply> =>
    new Promise((resolve, reject) => clients[i].status({ header: header('wt', 'test', 2_000) }, { deadline: Date.now() + 2_000 }, (e, r) => (e ? reject(e) : resolve(r!))));
  let leader = '';
  await until('an agreed leader', 20_000, async () => {
    const s = await Promise.all([0, 1, 2].map(status));
    leader = s[0].leader;
    return leader !== '' && s.every((x) => x.leader === leader);
  });
  const li = ids.indexOf(leader);
  const reply = await new Promise<ProposeReply>((resolve, reject) =>
    clients[li].propose({ header: header('wt', 'test', 5_000), command: encodeViewProposal(0, { view: 1, primary: 'a', backups: ['b'] }) }, { deadline: Date.now() + 6_000 }, (e, r) => (e ? reject(e) : resolve(r!))),
  );
  t.is(reply.failure, null);
  t.true(reply.result?.ok);
  await until('view 1 applied everywhere', 10_000, async () => (await Promise.all([0, 1, 2].map(status))).every((s) => s.view === 1));
  for (const p of procs) p.child.kill('SIGTERM');
  for (const p of procs) {
    t.is(await bounded(p.exited, 5_000), 0, p.stderr);
    t.regex(p.stderr, /stopped/);
  }
});

test.serial('a witness started from the cluster file serves, and stops on SIGINT', async (t) => {
  const dir = tempDir(t);
  const ports = await freePorts(3);
  const file = join(dir, 'waterbear.yaml');
  writeFileSync(file, [
    'cluster: ct',
    'guest: { module: kv.wasm }',
    'listen: [127.0.0.1:7000]',
    'replicas:',
    `  - { id: r1, address: 127.0.0.1:${ports[0]} }`,
    `  - { id: r2, address: 127.0.0.1:${ports[1]} }`,
    'witnesses:',
    `  - { id: w, address: 127.0.0.1:${ports[2]}, dataDir: ${join(dir, 'w')} }`,
    '',
  ].join('\n'));
  const p = start(t, ['--config', file, '--id', 'w']);
  await until('ready line', 20_000, () => p.stdout.includes('\n'));
  t.regex(p.stdout, new RegExp(`witness w: coordinator member of cluster "ct" serving on 127\\.0\\.0\\.1:${ports[2]} \\(members r1, r2, w;`));
  p.child.kill('SIGINT');
  t.is(await bounded(p.exited, 5_000), 0, p.stderr);

  const replica = start(t, ['--config', file, '--id', 'r1']);
  t.is(await bounded(replica.exited, 20_000), 2);
  t.regex(replica.stderr, /r1 is a replica.*\[WB_CONFIG_INVALID\]/);
});

test.serial('bad usage exits with code 2 and says what is missing', async (t) => {
  const noId = start(t, ['--peers', 'a=127.0.0.1:1']);
  t.is(await bounded(noId.exited, 20_000), 2);
  t.regex(noId.stderr, /--id is required/);
  const badPeers = start(t, ['--id', 'a', '--peers', 'a:127.0.0.1:1', '--data-dir', '/tmp/x']);
  t.is(await bounded(badPeers.exited, 20_000), 2);
  t.regex(badPeers.stderr, /ID=HOST:PORT/);
  const remote = start(t, ['--id', 'a', '--peers', 'a=10.1.2.3:7000', '--data-dir', '/tmp/x']);
  t.is(await bounded(remote.exited, 20_000), 2);
  t.regex(remote.stderr, /not loopback/);
});

test.serial('a witness whose disk fills up exits with code 75 so that it is restarted, and rejoins once there is space', async (t) => {
  const dir = tempDir(t);
  const small = smallTmpfs(t, '2m');
  if (small === null) { t.pass('skipped: see the log'); return; }
  const ports = await freePorts(3);
  const ids = ['a', 'b', 'w'];
  const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(',');
  const dataDir = (id: string): string => (id === 'w' ? join(small, 'w') : join(dir, id));
  const startOne = (id: string): Running => start(t, ['--id', id, '--peers', peers, '--data-dir', dataDir(id), '--cluster', 'wf']);
  const procs = new Map(ids.map((id) => [id, startOne(id)]));
  for (const [id, p] of procs) await until(`${id} ready line`, 20_000, () => p.stdout.includes('\n'));
  const clients = ports.map((port) => createCoordClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()));
  t.teardown(() => clients.forEach((c) => c.close()));
  const status = (i: number): Promise<StatusReply> =>
    new Promise((resolve, reject) => clients[i].status({ header: header('wf', 'test', 2_000) }, { deadline: Date.now() + 2_000 }, (e, r) => (e ? reject(e) : resolve(r!))));
  const propose = (i: number, expected: number): Promise<ProposeReply> => new Promise((resolve, reject) =>
    clients[i].propose({ header: header('wf', 'test', 3_000), command: encodeViewProposal(expected, { view: expected + 1, primary: 'a', backups: ['b'] }) }, { deadline: Date.now() + 4_000 }, (e, r) => (e ? reject(e) : resolve(r!))));
  await until('an agreed leader', 20_000, async () => {
    const s = await Promise.all([0, 1, 2].map(status));
    return s[0].leader !== '' && s.every((x) => x.leader === s[0].leader);
  });
  const filler = fillDisk(small);
  // Views keep committing on a and b; w must write each entry (as leader or follower) and cannot.
  const w = procs.get('w')!;
  let view = 0;
  for (let i = 0; i < 2_000 && w.child.exitCode === null; i++) {
    const leader = ids.indexOf((await status(i % 2).catch(() => null))?.leader ?? '');
    if (leader < 0) { await new Promise((r) => setTimeout(r, 20)); continue; }
    const r = await propose(leader, view).catch(() => null);
    if (r?.result?.ok === true) view++;
  }
  // The group goes on without w: one more view through whoever leads now.
  await until('a view committed by a and b alone', 20_000, async () => {
    const leader = ids.indexOf((await status(0)).leader);
    if (leader < 0 || leader > 1) return false;
    if ((await propose(leader, view)).result?.ok !== true) return false;
    view++;
    return true;
  });
  t.is(await bounded(w.exited, 20_000), 75, w.stderr);
  t.regex(w.stderr, /its coordinator member stopped \(.*\); exiting so that it is restarted once the fault is fixed/);
  // Space is back: the restarted witness catches up with every view committed meanwhile.
  rmSync(filler);
  const again = startOne('w');
  procs.set('w', again);
  await until('restarted w ready', 20_000, () => again.stdout.includes('\n'));
  const committed = view;
  await until(`w applies view ${committed}`, 20_000, async () => (await status(2)).view === committed);
  for (const p of procs.values()) p.child.kill('SIGTERM');
  for (const [id, p] of procs) if (p !== w) t.is(await bounded(p.exited, 5_000), 0, `${id}: ${p.stderr}`);
});
