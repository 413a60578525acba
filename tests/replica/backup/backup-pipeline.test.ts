import type * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { sealPages, type CheckpointData } from '../../../checkpoint/checkpoint-data.js';
import { encodeCheckpoint } from '../../../checkpoint/format/checkpoint-codec.js';
import type { CheckpointStore } from '../../../checkpoint/store/checkpoint-store.js';
import { WaterbearError } from '../../../libos-host/errors.js';
import { encodeVfsDelta } from '../../../libos-host/wasi/vfs-delta.js';
import { BackupDriver } from '../../../replica/backup/backup-driver.js';
import { DEFAULT_MEMORY_STORE_INTERVAL_MS, parseClusterConfig } from '../../../replica/config/cluster-config.js';
import type { Coordinator } from '../../../replica/coord/coordinator.js';
import { REPEATED_WARNING_INTERVAL_MS } from '../../../replica/log.js';
import type { View } from '../../../replica/protocol/view.js';
import { REPLICATION_PROTOCOL_VERSION, type BackupMessage, type PrimaryMessage } from '../../../replica/wire/replication-wire.js';

/*
 * The backup's two stages (verify, then store) with a store whose commits the test finishes by
 * hand: the real store's fdatasync cannot be held open on purpose. The stream is a fake too; the
 * cluster tests run the same driver over real gRPC and LMDB.
 */

const VIEW: View = { view: 1, primary: 'a', backups: ['b'] };

function config(ackAfter: 'memory' | 'disk', memoryStoreInterval?: string) {
  return parseClusterConfig(`
cluster: t
guest: { module: kv.wasm }
listen: [127.0.0.1:7000]
replicas:
  - { id: a, address: 127.0.0.1:1, dataDir: a }
  - { id: b, address: 127.0.0.1:2, dataDir: b }
witnesses:
  - { id: w, address: 127.0.0.1:3, dataDir: w }
replication: { ackAfter: ${ackAfter}${memoryStoreInterval === undefined ? '' : `, memoryStoreInterval: ${memoryStoreInterval}`} }
`, 'test.yaml');
}

function checkpoint(epoch: number, full: boolean): Uint8Array {
  const data = new Uint8Array(4096).fill(epoch);
  const cp: CheckpointData = {
    epoch, full, imageSha256: 'x', memoryBytes: 65536, pages: [{ index: 0, data }], globals: [],
    pending: { deadlineNs: null, blockedAtNs: 0n, forced: false },
    libos: {
      args: [], env: [], fds: [], vfsMaxBytes: 1 << 20, clock: { monotonicNs: '0' },
      vfs: { full, bytes: encodeVfsDelta({ version: 1, full, nextIno: 2, dev: '1', roots: [], removed: [], inodes: [], entries: [], chunks: [] }) },
    },
    extensions: null, stats: { pauseUs: 0, capturedAtMs: 0, trackerPages: 1, tracker: 'test' },
  };
  sealPages(cp);
  return encodeCheckpoint(cp);
}

/** A store whose commits stay pending until `finish` (or `fail`) is called, in order. */
class HeldStore {
  readonly commits: Array<{ epochs: number[]; finish: () => void; fail: (e: Error) => void }> = [];
  latest = 0;
  latestEpoch(): number { return this.latest; }
  commitBatchAsync(cps: readonly CheckpointData[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.commits.push({
        epochs: cps.map((c) => c.epoch),
        finish: () => { this.latest = cps.at(-1)!.epoch; resolve(); },
        fail: reject,
      });
    });
  }
}

const coordinator = {
  watchViews: () => () => {},
  readView: async () => VIEW,
  proposeView: async (_n: number, v: View) => v,
  awaitLeaseExpiry: () => new Promise<void>(() => {}),
} as unknown as Coordinator;

function start(ackAfter: 'memory' | 'disk', log: pino.Logger = pino({ level: 'silent' }), memoryStoreInterval?: string) {
  const store = new HeldStore();
  // The driver's clock; the store's pacing (replication.memoryStoreInterval) reads it. Moved by hand.
  const clock = { ms: 0 };
  const driver = new BackupDriver({
    self: 'b', dataDir: mkdtempSync(join(tmpdir(), 'wb-pipeline-')), config: config(ackAfter, memoryStoreInterval), store: store as unknown as CheckpointStore,
    coordinator, credentials: null as unknown as grpc.ChannelCredentials, log, nowMs: () => clock.ms,
  }, VIEW);
  const call = Object.assign(new EventEmitter(), {
    destroyed: false, writableEnded: false, sent: [] as BackupMessage[],
    write(m: BackupMessage) { this.sent.push(m); return true; },
    end() { this.writableEnded = true; },
  });
  driver.handleStream(call as unknown as grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>);
  const send = (epoch: number, full: boolean): void => {
    call.emit('data', { protocolVersion: REPLICATION_PROTOCOL_VERSION, view: 1, primaryId: 'a', checkpoint: { epoch, full, chunkIndex: 0, chunkCount: 1, data: checkpoint(epoch, full) } });
  };
  const acks = (): number[] => call.sent.flatMap((m) => (m.ack != null ? [m.ack.epoch] : []));
  return { driver, store, send, acks, call, clock };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await turn();
}
async function until(f: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !f(); i++) await turn();
}
/** Like `until`, across timers too (a held-back store batch waits on a real timer). */
async function eventually(f: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!f() && Date.now() < end) await new Promise((r) => setTimeout(r, 1));
}

/** A backup in view 1 that received full checkpoint 1, whose write is now pending in the store. */
async function writingFirst(ackAfter: 'memory' | 'disk', memoryStoreInterval?: string): Promise<ReturnType<typeof start>> {
  const b = start(ackAfter, undefined, memoryStoreInterval);
  await turn(); // the view is applied in a microtask
  b.send(1, true);
  await until(() => b.store.commits.length === 1);
  return b;
}

test('with ackAfter memory, a checkpoint is acknowledged while the previous one is still being written', async (t) => {
  const b = await writingFirst('memory');
  t.deepEqual(b.acks(), [1]);
  b.send(2, false);
  b.send(3, false);
  await until(() => b.acks().length === 3);
  t.deepEqual(b.acks(), [1, 2, 3], 'acknowledged from memory although epoch 1 is not durable yet');
  t.deepEqual(b.store.commits.map((c) => c.epochs), [[1]], 'one write at a time');
  b.clock.ms += DEFAULT_MEMORY_STORE_INTERVAL_MS;
  b.store.commits[0].finish();
  await eventually(() => b.store.commits.length === 2);
  t.deepEqual(b.store.commits[1].epochs, [2, 3], 'what was verified meanwhile is one group commit');
  b.store.commits[1].finish();
  b.driver.stop();
});

for (const [setting, intervalMs] of [[undefined, DEFAULT_MEMORY_STORE_INTERVAL_MS], ['40ms', 40]] as const) {
  test(`with ackAfter memory, store batches start at most every ${intervalMs} ms (memoryStoreInterval ${setting ?? 'default'}); what is acknowledged meanwhile waits and goes in one batch`, async (t) => {
    const b = await writingFirst('memory', setting);
    b.store.commits[0].finish(); // the first batch started at 0 ms
    b.clock.ms = intervalMs - 1;
    for (const e of [2, 3, 4]) b.send(e, false);
    await until(() => b.acks().length === 4);
    t.deepEqual(b.acks(), [1, 2, 3, 4], 'acknowledged at once');
    await new Promise((r) => setTimeout(r, 3 * intervalMs)); // real time passes; the driver's clock does not
    t.deepEqual(b.store.commits.map((c) => c.epochs), [[1]], 'held back until the interval has passed');
    b.clock.ms = intervalMs;
    await eventually(() => b.store.commits.length === 2);
    t.deepEqual(b.store.commits[1].epochs, [2, 3, 4]);
    b.driver.stop();
  });
}

test('with ackAfter memory and memoryStoreInterval 0, each epoch is stored as soon as the previous write is done', async (t) => {
  const b = await writingFirst('memory', '0ms');
  b.store.commits[0].finish();
  b.send(2, false);
  await eventually(() => b.store.commits.length === 2);
  t.deepEqual(b.store.commits.map((c) => c.epochs), [[1], [2]], 'not held back although the driver clock never moved');
  b.driver.stop();
});

test('with ackAfter disk, nothing is acknowledged before its write is durable, acks come in order, and the next batch is not held back', async (t) => {
  const b = await writingFirst('disk');
  b.send(2, false);
  await turns(2);
  t.deepEqual(b.acks(), []);
  b.store.commits[0].finish();
  await until(() => b.acks().length === 1 && b.store.commits.length === 2);
  t.deepEqual(b.acks(), [1]);
  b.store.commits[1].finish();
  await until(() => b.acks().length === 2);
  t.deepEqual(b.acks(), [1, 2]);
  b.driver.stop();
});

test('a failed write drops what was verified after it: it is not stored and, with ackAfter disk, never acknowledged', async (t) => {
  const b = await writingFirst('disk');
  b.send(2, false);
  b.send(3, false);
  await turns(2);
  b.store.commits[0].fail(new Error('EIO (test)'));
  await until(() => b.call.sent.some((m) => m.nack != null));
  await turns(5);
  t.deepEqual(b.acks(), []);
  t.is(b.call.sent.find((m) => m.nack != null)?.nack?.epoch, 1);
  t.deepEqual(b.store.commits.map((c) => c.epochs), [[1]], 'epochs 2 and 3 build on epoch 1: not written');
  b.driver.stop();
});

test('a store that keeps failing is warned about once per error code and interval, the rest at debug with a count: a full disk refuses every checkpoint', async (t) => {
  const lines: Array<{ level: number; msg: string; code?: string; epoch?: number; repeats?: number }> = [];
  const b = start('disk', pino({ level: 'debug' }, { write: (l: string) => { lines.push(JSON.parse(l)); } }));
  await turn();
  const refuse = async (epoch: number, err: Error): Promise<void> => {
    b.send(epoch, true);
    await until(() => b.store.commits.length === epoch);
    b.store.commits[epoch - 1].fail(err);
    await until(() => b.call.sent.filter((m) => m.nack != null).length === epoch);
  };
  for (const e of [1, 2, 3, 4]) await refuse(e, new WaterbearError('WB_STORE_FULL', 'disk full (test)'));
  await refuse(5, new Error('EIO (test)'));
  b.clock.ms += REPEATED_WARNING_INTERVAL_MS;
  await refuse(6, new WaterbearError('WB_STORE_FULL', 'disk full (test)'));
  t.deepEqual(b.call.sent.flatMap((m) => (m.nack != null ? [m.nack.epoch] : [])), [1, 2, 3, 4, 5, 6], 'every refusal still reaches the primary');
  const refused = lines.filter((l) => l.msg === 'checkpoint refused');
  t.deepEqual(refused.filter((l) => l.level === 40).map((l) => [l.epoch, l.code, l.repeats]), [
    [1, 'WB_STORE_FULL', undefined], [5, 'WB_STORE_IO', undefined], [6, 'WB_STORE_FULL', 3],
  ]);
  t.deepEqual(refused.filter((l) => l.level === 20).map((l) => l.epoch), [2, 3, 4], 'the folded ones are still logged at debug');
  b.driver.stop();
});

test('a promoted backup restores only after every checkpoint it acknowledged from memory is stored', async (t) => {
  const b = await writingFirst('memory');
  b.send(2, false);
  await until(() => b.acks().length === 2);
  const promoted: { epoch: number | null } = { epoch: null };
  b.driver.on('promote', (_v: View, epoch: number) => { promoted.epoch = epoch; });
  // b becomes primary of view 2: the coordinator committed its takeover.
  (b.driver as unknown as { apply(a: unknown[]): void }).apply([{ kind: 'promote', view: { view: 2, primary: 'b', backups: [] }, epoch: 2 }]);
  await turns(5);
  t.is(promoted.epoch, null, 'epoch 1 is still being written');
  b.store.commits[0].finish();
  await until(() => b.store.commits.length === 2);
  await turns(5);
  t.is(promoted.epoch, null, 'epoch 2 was acknowledged: it must be stored first');
  b.store.commits[1].finish();
  await until(() => promoted.epoch !== null);
  t.is(promoted.epoch, 2);
});
