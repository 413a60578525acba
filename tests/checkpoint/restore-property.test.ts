import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { startGuest } from '../helpers/lvm.js';
import { seededRandom, testSeed } from './helpers/checkpointing.js';
import { killHard, spawnTs, watch } from './helpers/child.js';

const CLI = 'tests/checkpoint/helpers/waterbear-cli.ts';
const ITERATIONS = 3;

/** `runMs`: about how long the guest runs (the kill comes within it). */
interface GuestCase { name: string; runFlags: string[]; inProcess: Parameters<typeof startGuest>[1]; runMs: number }

const COMPUTE: GuestCase = { name: 'test/compute', runFlags: ['--env', 'ROUNDS=60'], inProcess: { env: ['ROUNDS=60'] }, runMs: 2500 };
const FILES: GuestCase = { name: 'test/files', runFlags: ['--dir', '/data'], inProcess: { dirs: [{ guestPath: '/data', hostPath: null }] }, runMs: 120 };

/** What the guest prints when nothing interrupts it. */
async function uninterrupted(g: GuestCase): Promise<string> {
  const run = await startGuest(g.name, g.inProcess);
  const exit = await run.run();
  if (exit.kind !== 'exit' || exit.code !== 0) throw new Error(`uninterrupted ${g.name} failed: ${JSON.stringify(exit)}`);
  return run.stdout();
}

/**
 * Run the guest under `waterbear run --checkpoint-dir` in a child process, kill -9 it at a random
 * moment (so it is restored from whatever checkpoint was latest: a random one), sometimes kill
 * the restored process too, and let a final `waterbear restore` finish. The restored output must
 * be exactly the rest of the uninterrupted output, and what each killed process printed must be
 * part of it.
 */
async function property(t: ExecutionContext, g: GuestCase): Promise<void> {
  const expected = await uninterrupted(g);
  t.regex(expected, /\n/);
  const seed = testSeed(`restore property ${g.name}`);
  const random = seededRandom(seed);
  for (let i = 0; i < ITERATIONS; i++) {
    const dir = join(mkdtempSync(join(tmpdir(), 'wb-prop-')), 'cp');
    t.teardown(() => rmSync(join(dir, '..'), { recursive: true, force: true }));
    const tracker = ['instrument', 'shadow', 'auto'][Math.floor(random() * 3)];
    const interval = `${2 + Math.floor(random() * 30)}ms`;
    const where = `seed ${seed} iteration ${i} (${g.name}, tracker ${tracker}, interval ${interval})`;
    const first = spawnTs(CLI, ['run', `guests/${g.name}.wasm`, ...g.runFlags, '--checkpoint-dir', dir, '--checkpoint-interval', interval, '--tracker', tracker]);
    t.teardown(() => killHard(first));
    const w1 = watch(first);
    await w1.until(/checkpoint epoch \d+ written/);
    await new Promise((r) => setTimeout(r, Math.floor(random() * g.runMs)));
    await killHard(first);
    t.true(expected.startsWith(w1.stdout()), `${where}: the killed run printed something else:\n${w1.stdout()}`);
    let restores = 0;
    for (;;) {
      const again = spawnTs(CLI, ['restore', dir]);
      t.teardown(() => killHard(again));
      const w = watch(again);
      restores++;
      const crashAgain = restores === 1 && random() < 0.5;
      if (crashAgain) {
        await w.until(/restored epoch/);
        await new Promise((r) => setTimeout(r, Math.floor(random() * 600)));
        await killHard(again);
        t.true(expected.includes(w.stdout()), `${where}: killed restore printed something else:\n${w.stdout()}`);
        continue;
      }
      const code = await w.exited;
      t.is(code, 0, `${where}: restore failed: ${w.stderr()}`);
      const rest = w.stdout();
      t.true(rest.length > 0 && expected.endsWith(rest), `${where}: restored output is not the rest of the uninterrupted output:\n--- restored ---\n${rest}\n--- expected ---\n${expected}`);
      const epoch = /restored epoch (\d+)/.exec(w.stderr())?.[1];
      t.log(`${where}: killed after ${w1.stdout().split('\n').length - 1} lines, restored epoch ${epoch} (${restores} restores), ${rest.split('\n').length - 1} lines after`);
      break;
    }
  }
}

test('compute restored in a fresh process at a random checkpoint finishes with the uninterrupted output', async (t) => {
  await property(t, COMPUTE);
});

test('a guest using files restored in a fresh process at a random checkpoint finishes with the uninterrupted output', async (t) => {
  await property(t, FILES);
});
