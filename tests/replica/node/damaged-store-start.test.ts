import { readFileSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { CheckpointStore } from '../../../checkpoint/store/checkpoint-store.js';
import { lmdbLayout } from '../../checkpoint/helpers/damaged-store.js';
import { SyntheticVfs, commitChain } from '../../checkpoint/helpers/synthetic.js';
import { startWaterbear } from '../../helpers/cli.js';
import { clusterFileNotRunning } from '../../helpers/cluster.js';

test('a replica whose store file was cut short refuses to start with WB_CHECKPOINT_CORRUPT, not a crash, and leaves the file as it is', async (t) => {
  // lmdb crashed the replica with SIGBUS when it opened its store (found by an audit).
  const { file, dir, config } = await clusterFileNotRunning('damaged-store');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const storeDir = join(config.replicas[0].dataDir, 'store');
  const store = CheckpointStore.open(storeDir);
  commitChain(store, 1, 3, new SyntheticVfs());
  store.close();
  const dataFile = join(storeDir, 'data.mdb');
  truncateSync(dataFile, 2 * lmdbLayout(dataFile).pageBytes); // the meta pages only
  const before = readFileSync(dataFile);
  const replica = startWaterbear(['replica', '--config', file, '--id', 'a']);
  t.teardown(() => { if (replica.child.exitCode === null && replica.child.signalCode === null) replica.child.kill('SIGKILL'); });
  const code = await replica.exited;
  t.is(replica.child.signalCode, null, replica.err());
  t.is(code, 1, replica.err());
  t.regex(replica.err(), /WB_CHECKPOINT_CORRUPT/);
  t.true(replica.err().includes(`${dataFile} is damaged`), replica.err());
  t.true(readFileSync(dataFile).equals(before), 'the refused store file was changed');
  t.log(replica.err().trim());
});
