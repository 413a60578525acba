#!/usr/bin/env node
/**
 * Build the optional native addons in native/uffd (userfaultfd tracking, CRC-32C, parallel memory population for restores) with node-gyp.
 * Never fails: when the build is impossible (not Linux, no compiler, no Node headers, no
 * node-gyp) it prints a warning and exits 0, and waterbear falls back to the instrument tracker
 * and to CRC-32C in TypeScript at run time.
 *
 *   node native/uffd/build.mjs            (also run by `npm install` and `npm run build:native`)
 *   WATERBEAR_SKIP_NATIVE=1 npm install   skip it
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const warn = (msg) => console.warn(`waterbear: optional native addons not built (${msg}); dirty-page tracking will use store instrumentation, checksums and page comparisons TypeScript, restores one thread`);

function main() {
  if (process.env.WATERBEAR_SKIP_NATIVE === '1') { warn('WATERBEAR_SKIP_NATIVE=1'); return; }
  if (process.platform !== 'linux') { warn(`${process.platform} has no userfaultfd`); return; }

  // node-gyp: on PATH (npm puts its bundled copy there for scripts), else npm's bundled copy.
  const candidates = [];
  const onPath = spawnSync('sh', ['-c', 'command -v node-gyp'], { encoding: 'utf8' });
  if (onPath.status === 0 && onPath.stdout.trim() !== '') candidates.push([onPath.stdout.trim()]);
  const prefix = dirname(dirname(process.execPath));
  for (const p of [join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'), join(prefix, 'node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')]) {
    if (existsSync(p)) candidates.push([process.execPath, p]);
  }
  if (candidates.length === 0) { warn('node-gyp not found'); return; }

  // Use the local Node headers when they are installed (no download).
  const args = ['rebuild', '--release'];
  if (process.env.npm_config_nodedir === undefined && existsSync(join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);

  const [cmd, ...pre] = candidates[0];
  const r = spawnSync(cmd, [...pre, ...args], { cwd: here, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) {
    const tail = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n').slice(-8).join('\n');
    warn(`node-gyp exited with ${r.status ?? r.signal ?? r.error?.message}`);
    if (tail) console.warn(tail);
    return;
  }
  console.log(`waterbear: built ${join(here, 'build/Release/waterbear_uffd.node')} waterbear_crc32c.node and waterbear_populate.node`);
}

try {
  main();
} catch (err) {
  warn(err instanceof Error ? err.message : String(err));
}
