import test from 'ava';
import { V8_TUNING_FLAGS, applyV8Tuning } from '../../cli/v8-tuning.js';

test('a process running a guest applies the V8 flags unless WATERBEAR_V8_TUNING=0', (t) => {
  t.deepEqual(applyV8Tuning({ WATERBEAR_V8_TUNING: '0' }), []);
  t.deepEqual(applyV8Tuning({}), V8_TUNING_FLAGS);
  t.true(V8_TUNING_FLAGS.includes('--heap-growing-percent=200'));
});
