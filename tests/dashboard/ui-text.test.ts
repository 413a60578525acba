import test from 'ava';
import { clipText, count, describeResult, fmtAge, httpProblem, listOf, pageTitle, protectionReason } from '../../dashboard/ui/text.js';

test('a long error is cut at a word, with an ellipsis; a short one is kept whole', (t) => {
  t.is(clipText('connection refused', 60), 'connection refused');
  const long = '14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:40123 (3 ms ago)';
  const cut = clipText(long, 60);
  t.true(cut.length <= 60, cut);
  t.true(cut.endsWith('…'), cut);
  t.true(long.startsWith(cut.slice(0, -1)), cut);
  t.regex(long.slice(cut.length - 1), /^[\s,;:.(-]/, `cut at a word boundary: ${cut}`);
  t.is(clipText('x'.repeat(80), 10), `${'x'.repeat(9)}…`, 'one long word is cut inside it');
});

test('the protection sentence is singular or plural as the backups are', (t) => {
  t.is(protectionReason({ protection: 'PROTECTED', primary: 'a', backups: ['b'] }), 'backup b acknowledges every checkpoint before output leaves a');
  t.is(protectionReason({ protection: 'PROTECTED', primary: 'a', backups: ['b', 'c'] }), 'backups b and c acknowledge every checkpoint before output leaves a');
  t.is(listOf(['b', 'c', 'd']), 'b, c and d');
  t.regex(protectionReason({ protection: 'UNPROTECTED', primary: 'a', backups: [] }), /^a runs with no backup/);
  t.regex(protectionReason({ protection: 'NO PRIMARY', primary: null, backups: [] }), /service is down/);
});

test('action results read as text', (t) => {
  t.is(describeResult('checkpoint', { replica: 'a', epoch: 42 }), 'checkpoint taken: epoch 42 (run on a)');
  t.is(describeResult('switchover', { replica: 'a', view: 7 }), 'switchover done: view 7 (run on a)');
  t.is(describeResult('remove-backup', { view: 8 }), 'backup removed: view 8');
  t.regex(describeResult('add-backup', { replica: 'a', accepted: true }), /^backup accepted/);
  t.is(describeResult('checkpoint', { odd: 'x', n: 1 }), 'checkpoint done: odd x, n 1');
  t.is(describeResult('checkpoint', undefined), 'checkpoint done');
});

test('ages and the page title', (t) => {
  t.is(fmtAge(0), '0 s');
  t.is(fmtAge(5400), '5 s');
  t.is(fmtAge(185_000), '3 min 5 s');
  t.is(fmtAge(7_800_000), '2 h 10 min');
  t.is(pageTitle('UNPROTECTED', 'prod'), 'UNPROTECTED · prod · waterbear');
  t.is(pageTitle('NO DATA', null), 'NO DATA · waterbear');
});

test("an HTTP error reads as the dashboard's JSON error, else as the fallback", (t) => {
  t.is(httpProblem(401, { code: 'WB_UNAUTHORIZED', message: 'wrong admin token' }, 'x'), '401 WB_UNAUTHORIZED: wrong admin token');
  t.is(httpProblem(503, { message: 'busy' }, 'x'), '503: busy');
  t.is(httpProblem(502, undefined, 'HTTP 502 Bad Gateway'), 'HTTP 502 Bad Gateway');
});

test('counts read as English: 1 epoch, 0 and 2 epochs', (t) => {
  t.is(count(1, 'epoch'), '1 epoch');
  t.is(count(0, 'epoch'), '0 epochs');
  t.is(count(2, 'epoch'), '2 epochs');
});
