import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The waterbear package folder (holding package.json), from source or from dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('waterbear: cannot find package.json above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

/** Path of a bundled example guest, e.g. guestPath('kv') → <root>/guests/kv.wasm. */
export function guestPath(name: string): string {
  return join(packageRoot(), 'guests', `${name}.wasm`);
}
