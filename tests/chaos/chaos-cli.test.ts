import test from 'ava';
import { runWaterbear } from '../helpers/cli.js';

test('waterbear chaos --help describes the command', async (t) => {
  const r = await runWaterbear(['chaos', '--help']);
  t.is(r.code, 0);
  t.regex(r.stdout, /--seed N/);
  t.regex(r.stdout, /--faults LIST/);
});

for (const [args, what] of [
  [['--netns'], /not implemented yet/],
  [['--workload', 'bank'], /counter/],
  [['--faults', 'clock'], /not implemented/],
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
