import test from 'ava';
import { netnsProblem } from '../../chaos/cluster/netns.js';
import { replayCommand } from '../../cli/commands/chaos.js';
import { runWaterbear } from '../helpers/cli.js';

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

test('--netns is refused for a user who is not root, and for a machine without ip or nft, saying why', (t) => {
  const all = (): boolean => true;
  t.regex(netnsProblem({ uid: 65534, hasCommand: all }) ?? '', /^needs root/);
  t.regex(netnsProblem({ uid: 0, hasCommand: (c) => c !== 'nft' }) ?? '', /^needs nft on PATH .*nftables/);
  t.regex(netnsProblem({ uid: 0, hasCommand: () => false }) ?? '', /^needs ip and nft on PATH/);
  t.is(netnsProblem({ uid: 0, hasCommand: all }), null);
});

test('the replay command a report prints carries every option that shapes the run', (t) => {
  t.is(replayCommand({}, 7, 'kv'), 'waterbear chaos --seed 7 --duration 60s --workload kv --faults all');
  t.is(replayCommand({ config: 'c.yaml', duration: '30s', faults: 'kill,pause', clients: '2', keys: '9', 'check-budget': '5s', 'clock-bound': 'lease', netns: true }, 4242, 'counter'),
    'waterbear chaos --config c.yaml --seed 4242 --duration 30s --workload counter --faults kill,pause --clients 2 --keys 9 --check-budget 5s --clock-bound lease --netns');
});
