import test from 'ava';
import { MAX_WARNED_KEYS, RepeatedWarning, RepeatedWarningPerKey, WarningOncePerKey, type Logger } from '../../replica/log.js';

function recorder(): { log: Logger; lines: Array<{ level: string; fields: Record<string, unknown>; msg: string }> } {
  const lines: Array<{ level: string; fields: Record<string, unknown>; msg: string }> = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string): void => { lines.push({ level, fields, msg }); };
  return { log: { warn: at('warn'), debug: at('debug') } as unknown as Logger, lines };
}

test('a warning repeated every tick is logged at warn once per interval, with how many repeats were folded', (t) => {
  const { log, lines } = recorder();
  let now = 0;
  const w = new RepeatedWarning(log, 'view proposal failed', () => now, 5_000);
  // A coordinator outage: a failed proposal every 100 ms for 12 s.
  for (; now < 12_000; now += 100) w.warn({ err: 'no leader' });
  const warns = lines.filter((l) => l.level === 'warn');
  t.deepEqual(warns.map((l) => l.fields), [{ err: 'no leader' }, { err: 'no leader', repeats: 49 }, { err: 'no leader', repeats: 49 }]);
  t.true(warns.every((l) => l.msg === 'view proposal failed'));
  t.is(lines.filter((l) => l.level === 'debug').length, 120 - 3, 'every repeat is still there at debug');
});

test('a warning after a quiet spell is logged at once', (t) => {
  const { log, lines } = recorder();
  let now = 1_000;
  const w = new RepeatedWarning(log, 'takeover proposal failed', () => now, 5_000);
  w.warn({ err: 'a' });
  now += 60_000;
  w.warn({ err: 'b' });
  t.deepEqual(lines.map((l) => [l.level, l.fields]), [['warn', { err: 'a' }], ['warn', { err: 'b' }]]);
});

test('a clock that steps back does not silence the warning', (t) => {
  const { log, lines } = recorder();
  let now = 100_000;
  const w = new RepeatedWarning(log, 'view proposal failed', () => now, 5_000);
  w.warn({ err: 'a' });
  now -= 30_000;
  w.warn({ err: 'b' });
  t.deepEqual(lines.map((l) => l.level), ['warn', 'warn']);
});

test('a warning once per key is logged at warn the first time for each key, repeats at debug', (t) => {
  const { log, lines } = recorder();
  const w = new WarningOncePerKey(log, 'a peer speaks another replication protocol version');
  for (let i = 0; i < 3; i++) { w.warn('a 5', { peer: 'a' }); w.warn('c 3', { peer: 'c' }); }
  t.deepEqual(lines.filter((l) => l.level === 'warn').map((l) => l.fields), [{ peer: 'a' }, { peer: 'c' }]);
  t.is(lines.filter((l) => l.level === 'debug').length, 4);
});

test('a warning once per key forgets its keys past MAX_WARNED_KEYS rather than grow without bound', (t) => {
  const { log, lines } = recorder();
  const w = new WarningOncePerKey(log, 'x');
  for (let i = 0; i <= MAX_WARNED_KEYS; i++) w.warn(`peer ${i}`, {});
  w.warn('peer 0', {});
  t.is(lines.filter((l) => l.level === 'warn').length, MAX_WARNED_KEYS + 2, 'peer 0 was forgotten and warned again');
});

test('a repeated warning per key: each key is logged at warn once per interval, its repeats folded, and at most MAX_WARNED_KEYS are kept', (t) => {
  const { log, lines } = recorder();
  let now = 0;
  const w = new RepeatedWarningPerKey(log, 'a peer sent a corrupt replication message', () => now, 60_000);
  // Two peers resend corrupt messages every 100 ms for 90 s.
  for (; now < 90_000; now += 100) { w.warn('10.0.0.2 checksum', { peer: '10.0.0.2' }); w.warn('10.0.0.3 undecodable', { peer: '10.0.0.3' }); }
  t.deepEqual(lines.filter((l) => l.level === 'warn').map((l) => l.fields),
    [{ peer: '10.0.0.2' }, { peer: '10.0.0.3' }, { peer: '10.0.0.2', repeats: 599 }, { peer: '10.0.0.3', repeats: 599 }]);
  t.is(lines.filter((l) => l.level === 'debug').length, 2 * 900 - 4, 'every repeat is still there at debug');
  lines.length = 0;
  for (let i = 0; i < MAX_WARNED_KEYS; i++) w.warn(`peer ${i}`, {});
  w.warn('10.0.0.2 checksum', {});
  t.is(lines.filter((l) => l.level === 'warn').length, MAX_WARNED_KEYS + 1, 'the first keys were forgotten and warned again');
});
