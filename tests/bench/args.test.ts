import test from 'ava';
import { benchUsage, OUT_OPTION, parseBenchArgs } from '../../bench/lib/args.js';
import { WaterbearError } from '../../libos-host/errors.js';

const OPTIONS = {
  out: OUT_OPTION,
  rounds: { type: 'string', help: 'rounds to run' },
  quick: { type: 'boolean', help: 'fewer repetitions' },
  'inside-child': { type: 'boolean', help: 'internal', hidden: true },
} as const;
const COMMAND = 'npm run bench:demo --';

test('a benchmark\'s options parse to their values; options not given are absent', (t) => {
  const v = parseBenchArgs(COMMAND, 'demo', OPTIONS, ['--rounds', '3', '--quick', '--inside-child']);
  t.deepEqual(v, { rounds: '3', quick: true, 'inside-child': true });
});

test('an unknown option is a usage error that names it and shows the options, hidden ones left out', (t) => {
  const err = t.throws(() => parseBenchArgs(COMMAND, 'What demo measures.', OPTIONS, ['--roudns', '3']), { instanceOf: WaterbearError });
  t.is(err!.code, 'WB_CONFIG_INVALID');
  t.regex(err!.message, /^npm run bench:demo: Unknown option '--roudns'/);
  t.regex(err!.message, /npm run bench:demo -- \[OPTIONS\]\n\nWhat demo measures\./);
  t.regex(err!.message, /--rounds VAL\s+rounds to run/);
  t.regex(err!.message, /--out VAL\s+also write the results/);
  t.notRegex(err!.message, /inside-child/);
});

test('a string option without its value and a stray argument are usage errors too', (t) => {
  t.throws(() => parseBenchArgs(COMMAND, 'demo', OPTIONS, ['--rounds']), { instanceOf: WaterbearError, message: /--rounds/ });
  t.throws(() => parseBenchArgs(COMMAND, 'demo', OPTIONS, ['3']), { instanceOf: WaterbearError, message: /positional/ });
});

test('--help prints the usage and returns null, so the benchmark does not run', (t) => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (s: string) => { printed.push(s); };
  try {
    t.is(parseBenchArgs(COMMAND, 'What demo measures.', OPTIONS, ['--help']), null);
  } finally {
    console.log = log;
  }
  t.deepEqual(printed, [benchUsage(COMMAND, 'What demo measures.', OPTIONS)]);
  t.regex(printed[0], /--quick\s+fewer repetitions/);
  t.regex(printed[0], /--help\s+this text/);
});
