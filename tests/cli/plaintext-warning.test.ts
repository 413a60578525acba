import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { freePort } from '../../bench/support/servers.js';
import { runWaterbear } from '../helpers/cli.js';
import { REPO } from '../helpers/lvm.js';

/** How long each member runs before the test stops it (its peers, documentation addresses, never answer). */
const RUN_MS = 4_000;

test('members print a WARNING at start naming every link allowPlaintext leaves unencrypted off loopback', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wb-plaintext-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [svc, pa, pw] = [await freePort(), await freePort(), await freePort()];
  const file = (name: string, members: string): string => {
    const f = join(dir, name);
    writeFileSync(f, `guest: { module: ${REPO}guests/kv.wasm }\nlisten: [127.0.0.1:${svc}]\nallowPlaintext: true\nreplicas:\n  - { id: a, address: 127.0.0.1:${pa}, dataDir: ${dir}/a }\n${members}`);
    return f;
  };
  const raft = file('raft.yaml', `  - { id: b, address: 192.0.2.12:7101, dataDir: ${dir}/b }\nwitnesses:\n  - { id: w, address: 127.0.0.1:${pw}, dataDir: ${dir}/w }\n`);
  const etcd = file('etcd.yaml', `  - { id: b, address: 127.0.0.1:${await freePort()}, dataDir: ${dir}/b }\ncoordinator: { backend: etcd, endpoints: [http://192.0.2.21:2379] }\n`);
  const [witness, replica] = await Promise.all([
    runWaterbear(['witness', '--config', raft, '--id', 'w'], { timeoutMs: RUN_MS }),
    runWaterbear(['replica', '--config', etcd, '--id', 'a'], { timeoutMs: RUN_MS, env: { WATERBEAR_LOG_LEVEL: 'silent' } }),
  ]);
  t.regex(witness.stderr, /WARNING: witness w sends unencrypted traffic off loopback \(allowPlaintext\) to member b 192\.0\.2\.12:7101: /);
  t.regex(replica.stderr, /WARNING: replica a sends unencrypted traffic off loopback \(allowPlaintext\) to etcd http:\/\/192\.0\.2\.21:2379: /);
  // On loopback alone, nothing to warn about.
  const quiet = await runWaterbear(['witness', '--peers', `w=127.0.0.1:${await freePort()}`, '--data-dir', join(dir, 'q'), '--id', 'w'], { timeoutMs: RUN_MS });
  t.notRegex(quiet.stderr, /WARNING/);
  t.regex(quiet.stdout, /serving on 127\.0\.0\.1/, "it started: the check above looked at a running member");
});
