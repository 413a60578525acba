import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where an optional addon built by native/uffd (node-gyp, at `npm install`) may be: `$envVar`
 * when set, then native/uffd/build/Release/`file` in this file's folder or any above it (so
 * the sources under tsx and the compiled dist/ both find it). The first that exists, or
 * undefined when it was not built.
 */
export function findNativeAddon(file: string, envVar: string): string | undefined {
  const out: string[] = [];
  const env = process.env[envVar];
  if (env !== undefined && env !== '') out.push(env);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    out.push(join(dir, 'native', 'uffd', 'build', 'Release', file));
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return out.find((p) => existsSync(p));
}
