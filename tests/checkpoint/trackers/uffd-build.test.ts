import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import test from 'ava';
import { REPO } from '../../helpers/lvm.js';

/** A copy of native/uffd without its build output, so the real build is left alone. */
function copyOfAddon(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-uffd-build-'));
  const buildDir = join(REPO, 'native', 'uffd', 'build');
  cpSync(join(REPO, 'native', 'uffd'), dir, { recursive: true, filter: (src) => src !== buildDir && !src.startsWith(`${buildDir}${sep}`) });
  return dir;
}

test('the optional addon build never fails the install: a broken compiler gives a warning and exit 0', (t) => {
  const dir = copyOfAddon();
  try {
    const r = spawnSync(process.execPath, [join(dir, 'build.mjs')], { env: { ...process.env, CC: '/nonexistent/cc', CXX: '/nonexistent/c++' }, encoding: 'utf8', timeout: 120_000 });
    t.is(r.status, 0, r.stderr);
    t.regex(r.stderr, /optional native addons not built/);
    t.false(existsSync(join(dir, 'build', 'Release', 'waterbear_uffd.node')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('WATERBEAR_SKIP_NATIVE=1 skips the addon build with a warning', (t) => {
  const r = spawnSync(process.execPath, [join(REPO, 'native', 'uffd', 'build.mjs')], { env: { ...process.env, WATERBEAR_SKIP_NATIVE: '1' }, encoding: 'utf8' });
  t.is(r.status, 0);
  t.regex(r.stderr, /WATERBEAR_SKIP_NATIVE=1/);
});
