import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { passingScenario } from './helpers/scenario.js';

/**
 * A backup's checkpoint store fills up, fails its fdatasync, or turns slow (injected through the
 * store's fault hook, WATERBEAR_CHAOS_CONTROL).
 * The backup must refuse what it could not store (never acknowledge it), the primary must hold
 * the output meanwhile, and after each fault heals the service continues with every write.
 * (Failover after a failed store write: store-failure-ack-after-memory.test.ts.)
 * Replay: waterbear chaos --seed 7 --duration 25s --faults storage
 */
test.serial('a backup whose disk is full, fails fsync or is slow acknowledges nothing unstored: linearizable, nothing lost, service back after healing', async (t) => {
  t.timeout(180_000);
  const r = await passingScenario(t, {
    seed: 7, durationMs: 25_000, faults: 'storage',
    timing: { gapMs: [500, 1500], holdMs: { 'disk-full': [1500, 2500], fsync: [1500, 2500], 'slow-disk': [1500, 2500] }, recoveryMs: 2000 },
  });
  const faults = r.summary.availability.faults;
  for (const kind of ['disk-full', 'fsync', 'slow-disk']) {
    const evs = faults.filter((f) => f.kind === kind);
    t.true(evs.length > 0, `${kind} was injected`);
    t.true(evs.every((f) => f.endMs !== null), `${kind} was healed`);
  }
  const history = readFileSync(join(r.reportDir, 'history.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"nemesis-start"'));
  const struck = (kind: string): number => history.filter((l) => l.includes(`"f":"${kind}"`)).reduce((n, l) => n + Number(/it struck (\d+) commit/.exec(l)?.[1] ?? 0), 0);
  // A fault strikes only while its target is a backup in the view (a slow disk may get it dropped first).
  t.log(`commits struck: ${['disk-full', 'fsync', 'slow-disk'].map((k) => `${k} ${struck(k)}`).join(', ')}`);
  t.true(struck('disk-full') + struck('fsync') > 0, 'the failing store refused commits');
  // The backup said why it refused: the stable codes are in the logs.
  const logs = ['a', 'b'].map((id) => readFileSync(join(r.reportDir, 'logs', `${id}.log`), 'utf8')).join('\n');
  if (struck('disk-full') > 0) t.regex(logs, /"code":"WB_STORE_FULL"/);
  if (struck('fsync') > 0) t.regex(logs, /"code":"WB_STORE_IO"/);
});
