import test from 'ava';
import { REPLICA_V8_FLAGS, applyReplicaV8Flags } from '../../cli/v8-tuning.js';

test('a replica applies its V8 flags unless WATERBEAR_V8_TUNING=0', (t) => {
  t.deepEqual(applyReplicaV8Flags({ WATERBEAR_V8_TUNING: '0' }), []);
  t.deepEqual(applyReplicaV8Flags({}), REPLICA_V8_FLAGS);
  t.true(REPLICA_V8_FLAGS.includes('--heap-growing-percent=200'));
});
