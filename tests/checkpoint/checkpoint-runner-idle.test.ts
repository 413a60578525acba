import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { RespClient } from '../../chaos/clients/resp-client.js';
import { CheckpointRunner } from '../../checkpoint/checkpoint-runner.js';
import { Checkpointer } from '../../checkpoint/checkpointer.js';
import { CheckpointStore } from '../../checkpoint/store/checkpoint-store.js';
import { checkpointsForIdleSpacedSets } from '../helpers/idle-requests.js';
import { launchTracked } from './helpers/checkpointing.js';

const INTERVAL_MS = 20;
const IDLE_MS = 4 * INTERVAL_MS;
const REQUESTS = 8;
/** Checkpoints a busy host may add (a request that runs past the interval is captured twice). */
const SLACK = 3;

test('waterbear run --checkpoint-dir captures a request after an idle spell once, not also at its input', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wb-runner-idle-'));
  const store = CheckpointStore.open(dir);
  const runner = new CheckpointRunner({ store, intervalMs: INTERVAL_MS });
  const g = await launchTracked('kv', { tracker: 'instrument', listen: 1, hooks: runner.hooks });
  const checkpointer = new Checkpointer(g.lvm, { tracker: g.tracker });
  runner.attach(g.lvm, checkpointer);
  const running = g.lvm.run();
  try {
    const c = await RespClient.connect(Number(g.address().split(':').pop()));
    const taken = await checkpointsForIdleSpacedSets(t, c, REQUESTS, IDLE_MS, () => runner.pauseStats().count);
    // One checkpoint per request, when its guest blocks again. Without re-arming the interval at
    // wake, the long-passed suspend request also cut each request at its first import (2 each).
    t.true(taken >= REQUESTS && taken <= REQUESTS + SLACK, `${taken} checkpoints for ${REQUESTS} requests after idle spells`);
    t.is(runner.failure, null);
    c.close();
  } finally {
    g.lvm.stop();
    await running;
    await runner.close();
    g.os.closeAll();
    g.platform.closeAll();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
