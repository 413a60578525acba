import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { RespClient } from '../../chaos/clients/resp-client.js';
import { openDirStore } from '../../checkpoint/checkpoint-dir.js';
import { killHard, spawnTs, watch } from './helpers/child.js';

const CLI = 'tests/checkpoint/helpers/waterbear-cli.ts';
const KEYS = 300;
/** Many checkpoint intervals (20 ms): the INCRBY's own checkpoint is in the store by then. */
const SETTLE_MS = 500;

/** Wait until DIR's store holds a checkpoint captured after `afterMs` (wall clock); returns its epoch. */
async function checkpointAfter(dir: string, afterMs: number, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const store = openDirStore(dir, { readOnly: true });
    try {
      const head = store.head();
      if (head !== null && head.stats.capturedAtMs > afterMs) return head.epoch;
    } finally {
      store.close();
    }
    if (Date.now() > deadline) throw new Error(`no checkpoint after ${afterMs} in ${dir}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('the KV guest: keys written by a client survive kill -9 and waterbear restore, on the same address with the same extension stack', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'wb-kv-')), 'cp');
  t.teardown(() => rmSync(join(dir, '..'), { recursive: true, force: true }));
  const run = spawnTs(CLI, ['run', 'guests/kv.wasm', '--listen', '127.0.0.1:0', '--extension', 'metrics', '--checkpoint-dir', dir, '--checkpoint-interval', '20ms']);
  t.teardown(() => killHard(run));
  const w = watch(run);
  const [, address, port] = await w.until(/fd 3 listening on ((?:\d+\.){3}\d+:(\d+))/);
  const client = await RespClient.connect(Number(port));
  for (let i = 0; i < KEYS; i++) t.is(await client.call('SET', `key:${i}`, `value:${i}`), 'OK');
  const lastSentAt = Date.now();
  t.is(await client.call('INCRBY', 'counter', 41), 41);
  // The client stays connected: its connection is open in the checkpoint. An idle guest takes no
  // more checkpoints, and the one after the INCRBY can be captured before this process reads the
  // reply (a busy CI machine: waiting for one captured after the reply timed out). So: one
  // captured after the INCRBY was sent, then many checkpoint intervals for the one after it.
  await checkpointAfter(dir, lastSentAt);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const epoch = await checkpointAfter(dir, lastSentAt);
  await killHard(run);
  client.close();

  const store = openDirStore(dir, { readOnly: true });
  const summaries = store.epochSummaries();
  store.close();
  const pauses = summaries.filter((s) => !s.full).map((s) => s.pauseUs).sort((a, b) => a - b);
  t.log(`checkpointed through epoch ${epoch}; incremental pauses p50 ${pauses[Math.floor(pauses.length / 2)]} µs, max ${pauses.at(-1)} µs; ` +
    `pages per incremental p50 ${summaries.map((s) => s.pages).sort((a, b) => a - b)[Math.floor(summaries.length / 2)]}`);

  const restored = spawnTs(CLI, ['restore', dir]);
  t.teardown(() => killHard(restored));
  const r = watch(restored);
  await r.until(/restored epoch (\d+)/);
  const [, again] = await r.until(/fd 3 listening on (\S+)/);
  t.is(again, address, 'the restored service listens on the same address');
  const c = await RespClient.connect(Number(port));
  t.is(await c.call('DBSIZE'), KEYS + 1);
  t.is(await c.call('GET', 'key:0'), 'value:0');
  t.is(await c.call('GET', `key:${KEYS - 1}`), `value:${KEYS - 1}`);
  t.is(await c.call('INCR', 'counter'), 42);
  t.is(await c.call('SET', 'after', 'restore'), 'OK');
  c.close();
  restored.kill('SIGTERM');
  t.is(await r.exited, 0, r.stderr());
  t.regex(r.stderr(), /checkpoints in/);
});
