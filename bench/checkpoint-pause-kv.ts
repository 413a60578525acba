/**
 * Guest pause per checkpoint for the KV service under load, per tracker: the KV guest runs with
 * CheckpointRunner (interval 5 ms, LMDB store in a temp dir) while 4 clients send SETs; prints
 * the pause percentiles and the pages per checkpoint.
 *
 *   node --import tsx bench/checkpoint-pause-kv.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RespClient } from '../chaos/clients/resp-client.js';
import { CheckpointRunner } from '../checkpoint/checkpoint-runner.js';
import { Checkpointer } from '../checkpoint/checkpointer.js';
import { CheckpointStore } from '../checkpoint/store/checkpoint-store.js';
import type { TrackerKind } from '../checkpoint/trackers/dirty-tracker.js';
import { uffdAvailability } from '../checkpoint/trackers/uffd-tracker.js';
import { launchTracked } from '../tests/checkpoint/helpers/checkpointing.js';

const CLIENTS = 4;
const SETS_PER_CLIENT = 2000;

for (const tracker of ['instrument', 'uffd', 'shadow'] as TrackerKind[]) {
  if (tracker === 'uffd' && !uffdAvailability().available) { console.log('uffd: unavailable here'); continue; }
  const dir = mkdtempSync(join(tmpdir(), 'wb-bench-kv-'));
  const store = CheckpointStore.open(dir);
  const pages: number[] = [];
  const commitMs: number[] = [];
  const runner = new CheckpointRunner({ store, intervalMs: 5, onCommitted: (cp, ms) => { pages.push(cp.pages.length); commitMs.push(ms); } });
  const g = await launchTracked('kv', { tracker, listen: 1, hooks: runner.hooks });
  runner.attach(g.lvm, new Checkpointer(g.lvm, { tracker: g.tracker }));
  const running = g.lvm.run();
  const port = Number(g.address().split(':').pop());
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    const client = await RespClient.connect(port);
    for (let i = 0; i < SETS_PER_CLIENT; i++) await client.call('SET', `k:${c}:${i}`, `v${i}`);
    client.close();
  }));
  const elapsed = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 20));
  g.lvm.stop();
  await running;
  await runner.close();
  const p = runner.pauseStats();
  const sorted = [...pages].sort((a, b) => a - b);
  console.log(`${tracker}: ${p.count} checkpoints, pause p50 ${(p.p50Us / 1000).toFixed(3)} ms, p99 ${(p.p99Us / 1000).toFixed(3)} ms, max ${(p.maxUs / 1000).toFixed(3)} ms; ` +
    `pages p50 ${sorted[Math.floor(sorted.length / 2)]}; store commit p50 ${[...commitMs].sort((a, b) => a - b)[Math.floor(commitMs.length / 2)].toFixed(2)} ms; ` +
    `${Math.round((CLIENTS * SETS_PER_CLIENT) / (elapsed / 1000))} SET/s; memory ${g.lvm.memory.buffer.byteLength >> 20} MiB`);
  g.os.closeAll();
  g.platform.closeAll();
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
