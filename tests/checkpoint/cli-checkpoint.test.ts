import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { initCheckpointDir, openDirStore } from '../../checkpoint/checkpoint-dir.js';
import { runCli } from '../../cli/main.js';
import { spawnTs, watch } from './helpers/child.js';

const CLI = 'tests/checkpoint/helpers/waterbear-cli.ts';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, { out: (s) => { out += s; }, err: (s) => { err += s; } });
  return { code, out, err };
}

function tempDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-cli-cp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('run validates the checkpoint interval with a clear message', async (t) => {
  const dir = tempDir(t);
  for (const [value, shown] of [['0ms', '0 ms'], ['20s', '20 s'], ['0.5ms', '0.5 ms']]) {
    const r = await cli(['run', 'guests/test/hello.wasm', '--checkpoint-dir', join(dir, value), '--checkpoint-interval', value]);
    t.is(r.code, 2);
    t.regex(r.err, new RegExp(`--checkpoint-interval must be between 1 ms and 10 s: got ${shown.replace('.', '\\.')}`));
  }
  const bad = await cli(['run', 'guests/test/hello.wasm', '--checkpoint-dir', join(dir, 'x'), '--checkpoint-interval', 'soon']);
  t.is(bad.code, 2);
  t.regex(bad.err, /--checkpoint-interval must be a duration/);
  const noDir = await cli(['run', 'guests/test/hello.wasm', '--checkpoint-interval', '50ms']);
  t.is(noDir.code, 2);
  t.regex(noDir.err, /need --checkpoint-dir/);
  const tracker = await cli(['run', 'guests/test/hello.wasm', '--checkpoint-dir', join(dir, 't'), '--tracker', 'magic']);
  t.is(tracker.code, 2);
  t.regex(tracker.err, /--tracker must be one of/);
});

test('checkpoint inspect prints epochs, sizes and page counts; restore and run refuse what they cannot use', async (t) => {
  const dir = join(tempDir(t), 'cp');
  const child = spawnTs(CLI, ['run', 'guests/test/compute.wasm', '--env', 'ROUNDS=20', '--checkpoint-dir', dir, '--checkpoint-interval', '5ms', '--tracker', 'shadow']);
  const w = watch(child);
  t.is(await w.exited, 0, w.stderr());
  t.regex(w.stderr(), /\d+ checkpoints in .* guest pause p50/);

  const inspect = await cli(['checkpoint', 'inspect', dir, '--verify']);
  t.is(inspect.code, 0, inspect.err);
  t.regex(inspect.out, /latest epoch\s+\d+/);
  t.regex(inspect.out, /verify\s+ok: epoch \d+/);
  t.regex(inspect.out, /^\s+1\s+full\s+\d+/m);
  t.regex(inspect.out, /^\s+2\s+incremental\s+\d+/m);
  const json = JSON.parse((await cli(['checkpoint', 'inspect', dir, '--json'])).out) as { store: { latestEpoch: number }; epochs: unknown[]; launch: { tracker: string } };
  t.true(json.store.latestEpoch >= 2);
  t.is(json.launch.tracker, 'shadow');

  const again = await cli(['run', 'guests/test/compute.wasm', '--checkpoint-dir', dir]);
  t.is(again.code, 2);
  t.regex(again.err, /already holds the checkpoints of a run/);
  const notDir = await cli(['restore', tempDir(t)]);
  t.is(notDir.code, 2);
  t.regex(notDir.err, /is not a checkpoint directory/);

  const store = openDirStore(dir);
  store.unsafeCorruptPage(store.pageIndices()[0]);
  store.close();
  const corrupt = await cli(['restore', dir]);
  t.is(corrupt.code, 1);
  t.regex(corrupt.err, /WB_CHECKPOINT_CORRUPT/);
  const verify = await cli(['checkpoint', 'inspect', dir, '--verify']);
  t.is(verify.code, 1);
});

test('restore and checkpoint inspect refuse a store whose LMDB file was cut short, with WB_CHECKPOINT_CORRUPT, not a crash', async (t) => {
  // They crashed with SIGBUS inside lmdb (found by an audit). Run in child processes, so that a crash shows as one.
  const dir = join(tempDir(t), 'cp');
  const run = watch(spawnTs(CLI, ['run', 'guests/test/compute.wasm', '--env', 'ROUNDS=5', '--checkpoint-dir', dir, '--checkpoint-interval', '5ms', '--tracker', 'shadow']));
  t.is(await run.exited, 0, run.stderr());
  const file = join(dir, 'store', 'data.mdb');
  const bytes = statSync(file).size;
  const cut = Math.floor(bytes / 2 / 65536) * 65536; // whole pages, whatever their size
  t.true(cut > 0);
  truncateSync(file, cut);
  for (const args of [['restore', dir], ['checkpoint', 'inspect', dir]]) {
    const child = spawnTs(CLI, args);
    const w = watch(child);
    const code = await w.exited;
    t.is(child.signalCode, null, `${args[0]} crashed: ${w.stderr()}`);
    t.is(code, 1, w.stderr());
    t.true(w.stderr().includes(`WB_CHECKPOINT_CORRUPT`) && w.stderr().includes(`${file} is damaged`), w.stderr());
  }
});

test('checkpoint inspect and restore --no-checkpoint refuse a directory without its store, naming it, and create nothing there', async (t) => {
  // What `run --checkpoint-dir` writes before it opens the store: launch.json and guest.wasm, no store/.
  const dir = join(tempDir(t), 'cp');
  initCheckpointDir(dir, readFileSync('guests/test/hello.wasm'), {
    programName: 'hello.wasm', memoryLimitBytes: 1 << 24, imageChoices: { dirtyTracking: 'none', yieldPoints: true }, tracker: 'shadow',
    extensionFlags: { trace: null, faults: [], extensions: [] }, checkpointIntervalMs: 50,
  });
  for (const args of [['checkpoint', 'inspect', dir], ['checkpoint', 'inspect', dir, '--json'], ['restore', dir, '--no-checkpoint']]) {
    const r = await cli(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    t.true(r.err.includes(`${dir} is not a complete checkpoint directory: it has no checkpoint store`), r.err);
    t.regex(r.err, /\[WB_CONFIG_INVALID\]/);
    t.false(existsSync(join(dir, 'store')), `${args.join(' ')} created ${dir}/store`);
  }
  // An empty folder, and a folder that is not a checkpoint directory, are refused as well.
  for (const notCheckpoint of [tempDir(t), join(dir, '..')]) {
    const r = await cli(['checkpoint', 'inspect', notCheckpoint]);
    t.is(r.code, 2, r.err);
    t.regex(r.err, /is not a checkpoint directory .*\[WB_CONFIG_INVALID\]/);
  }
});
