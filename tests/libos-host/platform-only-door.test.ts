/**
 * DESIGN rule 4 ("the platform is the only door") and the layering, checked on the sources:
 * inside libos-host only platform/ touches the OS (files, sockets, processes, timers, wall clock,
 * randomness), and libos-host imports nothing from the layers above it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import test from 'ava';

const ROOT = join(import.meta.dirname, '..', '..');
const LIBOS = join(ROOT, 'libos-host');
const OS_MODULES = /from 'node:(fs|fs\/promises|net|os|child_process|dgram|dns|http|https|http2|tls|worker_threads|cluster|readline|tty|timers|timers\/promises)'/;
const OS_CALLS = /\b(Date\.now|Math\.random|setTimeout|setInterval|setImmediate)\s*\(/;
const UPPER_LAYERS = /from '(\.\.\/)+(checkpoint|replica|network-buffer|cli|dashboard|chaos|bench|deploy)\//;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** `file:line: text` for each line of the libos-host sources outside platform/ matching `re` (comments skipped). */
function offenders(re: RegExp): string[] {
  const found: string[] = [];
  for (const file of sources(LIBOS)) {
    if (relative(LIBOS, file).startsWith('platform')) continue;
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      const code = line.trim();
      if (code.startsWith('//') || code.startsWith('*') || code.startsWith('/*')) return;
      if (re.test(line)) found.push(`${relative(ROOT, file)}:${i + 1}: ${code}`);
    });
  }
  return found;
}

test('inside libos-host, only platform/ imports the OS modules', (t) => {
  t.true(sources(LIBOS).length > 20, 'the sources were found');
  t.deepEqual(offenders(OS_MODULES), []);
});

test('inside libos-host, only platform/ reads the wall clock, draws randomness or sets timers', (t) => {
  t.deepEqual(offenders(OS_CALLS), []);
});

test('libos-host imports nothing from the layers above it', (t) => {
  t.deepEqual(offenders(UPPER_LAYERS), []);
});
