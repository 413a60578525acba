import test from 'ava';
import { muteKnownWarnings } from '../../cli/known-warnings.js';

function recorder(): { proc: Pick<NodeJS.Process, 'emitWarning'>; seen: unknown[][] } {
  const seen: unknown[][] = [];
  const proc = { emitWarning: ((...args: unknown[]) => { seen.push(args); }) as NodeJS.Process['emitWarning'] };
  return { proc, seen };
}

test('DEP0123 is muted in each form Node emits a warning in', (t) => {
  const { proc, seen } = recorder();
  muteKnownWarnings(proc);
  proc.emitWarning('Setting the TLS ServerName to an IP address …', 'DeprecationWarning', 'DEP0123');
  proc.emitWarning('Setting the TLS ServerName to an IP address …', { type: 'DeprecationWarning', code: 'DEP0123' });
  proc.emitWarning(Object.assign(new Error('SNI to an IP'), { name: 'DeprecationWarning', code: 'DEP0123' }));
  t.deepEqual(seen, []);
});

test('every other warning passes through unchanged', (t) => {
  const { proc, seen } = recorder();
  muteKnownWarnings(proc);
  const err = Object.assign(new Error('too many listeners'), { code: 'ERR_X' });
  proc.emitWarning('Buffer() is deprecated', 'DeprecationWarning', 'DEP0005');
  proc.emitWarning('no code at all');
  proc.emitWarning(err);
  proc.emitWarning('options form', { type: 'ExperimentalWarning', code: 'X1' });
  t.deepEqual(seen, [
    ['Buffer() is deprecated', 'DeprecationWarning', 'DEP0005'],
    ['no code at all'],
    [err],
    ['options form', { type: 'ExperimentalWarning', code: 'X1' }],
  ]);
});
