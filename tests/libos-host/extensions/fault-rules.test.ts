import test from 'ava';
import { parseFaultRule } from '../../../libos-host/extensions/registry.js';
import { isWaterbearError } from '../../../libos-host/errors.js';

test('valid rules parse with defaults', (t) => {
  t.like(parseFaultRule('call=read,errno=ECONNRESET,p=0.1'), { kind: 'fail', call: 'read', errno: 'ECONNRESET', p: 0.1, after: 0, count: null, seed: null, on: null });
  t.like(parseFaultRule('call=write,after=100,errno=EPIPE'), { kind: 'fail', call: 'write', errno: 'EPIPE', after: 100, p: 1 });
  t.like(parseFaultRule('call=write'), { errno: 'EPIPE' });
  t.like(parseFaultRule('call=read'), { errno: 'ECONNRESET' });
  t.like(parseFaultRule('call=read,after=2,count=1,on=connection,seed=7'), { after: 2, count: 1, on: 'connection', seed: 7 });
  t.like(parseFaultRule('call=read,latency=5ms'), { kind: 'latency', call: 'read', latencyNs: 5_000_000 });
  t.like(parseFaultRule('call=wait,latency=1.5s'), { kind: 'latency', call: 'wait', latencyNs: 1_500_000_000 });
  t.like(parseFaultRule('call=wait,p=0.2'), { kind: 'fail', call: 'wait', errno: null });
  t.like(parseFaultRule('call=now,clock=monotonic,jump=+5s'), { kind: 'clock', clock: 'monotonic', jumpNs: 5e9, drift: 1 });
  t.like(parseFaultRule('call=now,clock=realtime,jump=-500ms,drift=1.001,after=10'), { kind: 'clock', jumpNs: -5e8, drift: 1.001, after: 10 });
  t.like(parseFaultRule('call=listen,errno=EACCES'), { call: 'listen', errno: 'EACCES' });
  t.like(parseFaultRule(' call=accept '), { call: 'accept', errno: 'ECONNRESET', text: 'call=accept' });
});

const BAD_RULES: Array<[string, string]> = [
  ['', 'no call'],
  ['errno=EIO', 'no call'],
  ['call=reed', 'unknown call'],
  ['call=close', 'close cannot fail'],
  ['call=open', 'open cannot fail'],
  ['call=read,errno=EADDRINUSE', 'errno the call cannot return'],
  ['call=read,errno=econnreset', 'errno is case-sensitive'],
  ['call=wait,errno=EIO', 'wait takes no errno'],
  ['call=read,p=0', 'p must be > 0'],
  ['call=read,p=1.5', 'p above 1'],
  ['call=read,p=abc', 'p not a number'],
  ['call=read,after=-1', 'negative after'],
  ['call=read,after=1.5', 'fractional after'],
  ['call=read,count=0', 'count below 1'],
  ['call=read,seed=4294967296', 'seed above uint32'],
  ['call=read,on=socket', 'unknown stream kind'],
  ['call=wait,on=connection', 'on= with a call without a stream'],
  ['call=read,latency=5', 'latency without unit'],
  ['call=read,latency=-5ms', 'negative latency'],
  ['call=read,latency=0ms', 'zero latency'],
  ['call=write,latency=5ms', 'latency on write'],
  ['call=read,latency=5ms,p=0.5', 'latency with p'],
  ['call=read,latency=5ms,errno=EIO', 'latency with errno'],
  ['call=now', 'now without clock'],
  ['call=now,clock=monotonic', 'now without jump or drift'],
  ['call=now,clock=wall,jump=1s', 'unknown clock'],
  ['call=now,clock=realtime,jump=5', 'jump without unit'],
  ['call=now,clock=realtime,drift=0', 'zero drift'],
  ['call=now,clock=realtime,drift=-1', 'negative drift'],
  ['call=now,clock=realtime,jump=1s,p=0.5', 'p on now'],
  ['call=read,jump=1s', 'jump on read'],
  ['call=read,bogus=1', 'unknown option'],
  ['call=read,call=write', 'duplicate option'],
  ['call=read,,p=1', 'empty option'],
  ['call', 'option without ='],
];

for (const [rule, why] of BAD_RULES) {
  test(`rule "${rule}" is rejected with WB_CONFIG_INVALID (${why})`, (t) => {
    const err = t.throws(() => parseFaultRule(rule));
    t.true(isWaterbearError(err, 'WB_CONFIG_INVALID'), String(err));
  });
}
