import { PassThrough } from 'node:stream';
import test from 'ava';
import { NodePlatform } from '../../../libos-host/platform/node-platform.js';

test('stdin is read while its handle is open; closing it stops listening and pauses the input, so a flowing stdin no longer keeps the process alive', (t) => {
  const stdin = new PassThrough();
  const p = new NodePlatform({ stdin, stdout: new PassThrough().resume(), stderr: new PassThrough().resume() });
  const h = p.open('stdin:');
  t.is(stdin.listenerCount('data'), 1);
  t.false(stdin.isPaused());
  stdin.write('line\n');
  t.true(p.poll(h).readable);
  p.close(h);
  t.is(stdin.listenerCount('data'), 0);
  t.is(stdin.listenerCount('end'), 0);
  t.true(stdin.isPaused(), 'nothing reads it any more');
  // Another reader keeps it flowing: only our listener goes.
  const other = new PassThrough();
  const q = new NodePlatform({ stdin: other });
  const onData = (): void => {};
  other.on('data', onData);
  q.close(q.open('stdin:'));
  t.is(other.listenerCount('data'), 1);
  t.false(other.isPaused(), 'the other reader still gets data');
});
