import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { passingScenario } from './helpers/scenario.js';

/**
 * A backup's checkpoint store fills up, fails its fdatasync, or turns slow (injected through the
 * store's fault hook, WATERBEAR_CHAOS_CONTROL), and the primary is killed between those faults.
 * The backup must refuse what it could not store (never acknowledge it), the primary must hold
 * the output meanwhile, and after each fault heals the service continues with every write.
 * Replay: waterbear chaos --seed 7 --duration 25s --faults storage,kill:primary
 */
test.serial('a backup whose disk is full, fails fsync or is slow acknowledges nothing unstored: linearizable, nothing lost, service back after healing', async (t) => {
  t.timeout(180_000);
  const r = await passingScenario(t, {
    seed: 7, durationMs: 25_000, faults: 'storage,kill:primary',
    timing: { gapMs: [500, 1500], holdMs: { 'disk-full': [1500, 2500], fsync: [1500, 2500], 'slow-disk': [1500, 2500], kill: [500, 1000] }, recoveryMs: 2000 },
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
  // The backup said why it refused: the stable codes are in its log.
  const logs = ['a', 'b'].map((id) => readFileSync(join(r.reportDir, 'logs', `${id}.log`), 'utf8')).join('\n');
  t.regex(logs, /"code":"WB_STORE_FULL"/);
  t.regex(logs, /"code":"WB_STORE_IO"/);
});
