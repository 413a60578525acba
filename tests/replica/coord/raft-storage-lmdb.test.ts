import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { open } from 'lmdb';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { RaftNode } from '../../../replica/coord/raft/raft-node.js';
import { SeededRandom } from '../../../replica/coord/raft/raft-random.js';
import { LmdbRaftStorage } from '../../../replica/coord/raft/raft-storage-lmdb.js';
import { MemoryRaftStorage } from '../../../replica/coord/raft/raft-storage.js';
import { readyWorkload, stateFingerprint, workloadStates } from './helpers/storage-workload.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-raft-lmdb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a new store is empty', async (t) => {
  const storage = LmdbRaftStorage.open(tempDir(t));
  const s = storage.load();
  t.deepEqual(s.hardState, { term: 0, vote: '', commit: 0 });
  t.is(s.snapshot.meta.index, 0);
  t.deepEqual(s.entries, []);
  await storage.close();
});

test('every kind of Ready persists exactly like the reference model, and survives close and reopen', async (t) => {
  const dir = tempDir(t);
  let storage = LmdbRaftStorage.open(dir);
  const model = new MemoryRaftStorage();
  let i = 0;
  for (const rd of readyWorkload(7, 400)) {
    await storage.save(rd);
    model.saveSync(rd);
    if (++i % 25 === 0) {
      t.is(stateFingerprint(storage.load()), stateFingerprint(model.load()), `after ${i} readies`);
      // Close and reopen mid-way too: the store must carry on from where it was.
      await storage.close();
      storage = LmdbRaftStorage.open(dir);
    }
  }
  t.deepEqual(storage.load(), model.load());
  await storage.close();
  const reopened = LmdbRaftStorage.open(dir);
  t.deepEqual(reopened.load(), model.load());
  await reopened.close();
});

test('a raft node restarts from the LMDB store with its term, vote, commit, snapshot and log', async (t) => {
  const dir = tempDir(t);
  const storage = LmdbRaftStorage.open(dir);
  const node = new RaftNode({ id: 'solo', persisted: storage.load(), random: new SeededRandom(1), bootstrapVoters: ['solo'] });
  const drain = async (): Promise<void> => {
    while (node.hasReady()) await storage.save(node.ready());
  };
  node.campaign();
  await drain();
  for (let i = 0; i < 10; i++) node.propose(new TextEncoder().encode(`v${i}`));
  await drain();
  node.compact(6, new TextEncoder().encode('snapshot@6'));
  await drain();
  const before = node.status();
  await storage.close();

  const again = LmdbRaftStorage.open(dir);
  const restarted = new RaftNode({ id: 'solo', persisted: again.load(), random: new SeededRandom(2) });
  const after = restarted.status();
  t.is(after.term, before.term);
  t.is(after.vote, 'solo');
  t.is(after.commit, before.commit);
  t.is(after.lastIndex, before.lastIndex);
  t.is(after.snapshotIndex, 6);
  t.deepEqual(after.membership.voters, ['solo']);
  t.is(new TextDecoder().decode(again.load().snapshot.data), 'snapshot@6');
  await again.close();
});

test('a store written by another format version is refused with WB_CHECKPOINT_VERSION', async (t) => {
  const dir = tempDir(t);
  (await LmdbRaftStorage.open(dir).close());
  const raw = open({ path: dir, maxDbs: 4 });
  const state = raw.openDB<Buffer, string>({ name: 'raft-state', encoding: 'binary' });
  state.putSync('format', Buffer.from('{"version":99}'));
  await raw.close();
  const err = t.throws(() => LmdbRaftStorage.open(dir));
  t.true(isWaterbearError(err, 'WB_CHECKPOINT_VERSION'));
});

test('entries that do not follow the stored log are refused with WB_PROTOCOL', async (t) => {
  const storage = LmdbRaftStorage.open(tempDir(t));
  const err = await t.throwsAsync(
    storage.save({ hardState: null, entries: [{ index: 5, term: 1, type: 'normal', data: new Uint8Array() }], snapshot: null, compacted: null }),
  );
  t.true(isWaterbearError(err, 'WB_PROTOCOL'));
  t.deepEqual(storage.load().entries, [], 'nothing was written');
  await storage.close();
});

const WRITER = fileURLToPath(new URL('./fixtures/lmdb-writer.ts', import.meta.url));

/** Starts the writer, waits for `acks` acknowledgements, SIGKILLs it; returns the last ack seen. */
function writeThenKill(dir: string, seed: number, acks: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, String(seed), '1000000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let last = 0;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^ack (\d+)$/.exec(line);
      if (m === null) return;
      last = Number(m[1]);
      if (last === acks) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(last);
      else reject(new Error(`writer exited with ${code}: ${stderr}`));
    });
  });
}

test('kill -9 while writing leaves exactly a prefix of the acknowledged writes, never a torn one', async (t) => {
  for (const [seed, acks] of [
    [11, 40],
    [12, 150],
    [13, 333],
  ] as const) {
    const dir = tempDir(t);
    const lastAck = await writeThenKill(dir, seed, acks);
    t.true(lastAck >= acks);
    const storage = LmdbRaftStorage.open(dir);
    const recovered = storage.load();
    await storage.close();
    const fp = stateFingerprint(recovered);
    let k = 0;
    let found = -1;
    for (const s of workloadStates(seed, lastAck + 10_000)) {
      if (k >= lastAck && stateFingerprint(s) === fp) {
        found = k;
        break;
      }
      k++;
    }
    t.true(found >= lastAck, `seed ${seed}: recovered state must equal the state after some n >= ${lastAck} readies (found ${found})`);
    t.log(`seed ${seed}: killed after ack ${lastAck}; recovered exactly the state after ${found} readies (${recovered.entries.length} entries, snapshot ${recovered.snapshot.meta.index})`);
    // And it is a state a node can restart from.
    t.notThrows(() => new RaftNode({ id: 'n1', persisted: recovered, random: new SeededRandom(1) }));
  }
});
