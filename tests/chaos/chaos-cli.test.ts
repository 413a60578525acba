import { spawnSync } from 'node:child_process';
import test from 'ava';
import { WATERBEAR, runWaterbear } from '../helpers/cli.js';

test('waterbear chaos --help describes the command', async (t) => {
  const r = await runWaterbear(['chaos', '--help']);
  t.is(r.code, 0);
  t.regex(r.stdout, /--seed N/);
  t.regex(r.stdout, /--faults LIST/);
});

for (const [args, what] of [
  [['--workload', 'bank'], /counter/],
  [['--faults', 'clock:links'], /target of clock/],
  [['--faults', 'disk-full:primary'], /target of disk-full/],
  [['--faults', 'storage:backup'], /takes no target/],
  [['--clock-bound', 'sometimes'], /--clock-bound must be/],
  [['--faults', 'kill:everyone'], /target of kill/],
  [['--seed', 'x'], /--seed must be an integer/],
  [['--duration', '1s'], /--duration must be between/],
] as const) {
  test(`waterbear chaos ${args.join(' ')} is refused with exit code 2 and a reason`, async (t) => {
    const r = await runWaterbear(['chaos', ...args]);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, what);
    t.regex(r.stderr, /WB_CONFIG_INVALID/);
  });
}

test('waterbear chaos --netns with network faults that need the proxies is refused with exit code 2', async (t) => {
  const r = await runWaterbear(['chaos', '--netns', '--faults', 'kill,delay']);
  t.is(r.code, 2, r.stderr);
  // Not root or no ip/nft: refused for that reason; otherwise for the proxy-only fault.
  t.regex(r.stderr, /--netns (needs root|needs ip|needs nft)|delay need the proxies/);
});

test('waterbear chaos --netns as a user who is not root is refused with exit code 2 and says why', async (t) => {
  if (process.getuid?.() !== 0) {
    const r = await runWaterbear(['chaos', '--netns']);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /--netns needs root/);
    return;
  }
  // As root: run the refusal as nobody (uid 65534), when setpriv is there to drop privileges.
  if (spawnSync('sh', ['-c', 'command -v setpriv'], { stdio: 'ignore' }).status !== 0) { t.pass('setpriv missing: the non-root refusal is not exercised'); return; }
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, WATERBEAR, 'chaos', '--netns'], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 2, r.stderr);
  t.regex(r.stderr, /--netns needs root/);
});
