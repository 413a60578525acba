import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { codeFolderDigest } from '../../../libos-host/platform/cache-files.js';

function folder(t: import('ava').ExecutionContext, files: Record<string, string>): { dir: string; url: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wb-digest-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { dir, url: pathToFileURL(join(dir, 'prepare.js')).href };
}

test('the digest changes when any code file of the folder changes, is added or is renamed', (t) => {
  const { dir, url } = folder(t, { 'prepare.js': 'a', 'pass.js': 'b' });
  const before = codeFolderDigest(url);
  t.is(codeFolderDigest(url), before);
  writeFileSync(join(dir, 'pass.js'), 'b2');
  const edited = codeFolderDigest(url);
  t.not(edited, before);
  writeFileSync(join(dir, 'other.ts'), 'c');
  const added = codeFolderDigest(url);
  t.not(added, edited);
  rmSync(join(dir, 'other.ts'));
  writeFileSync(join(dir, 'other2.ts'), 'c');
  t.not(codeFolderDigest(url), added);
});

test('source maps, declarations and sub-folders do not change the digest', (t) => {
  const { dir, url } = folder(t, { 'prepare.js': 'a', 'pass.js': 'b' });
  const before = codeFolderDigest(url);
  writeFileSync(join(dir, 'pass.js.map'), '{}');
  writeFileSync(join(dir, 'pass.d.ts'), 'export {}');
  mkdirSync(join(dir, 'sub.js'));
  t.is(codeFolderDigest(url), before);
});

test('a folder that cannot be read digests as unreadable instead of throwing', (t) => {
  t.is(codeFolderDigest(pathToFileURL(join(tmpdir(), 'wb-no-such-folder', 'x', 'prepare.js')).href), 'unreadable');
});
