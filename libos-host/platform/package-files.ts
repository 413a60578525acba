import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

/** The waterbear package folder (the one holding package.json), from the sources or from dist/. */
export function packageRoot(): string {
  if (root !== null) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'proto'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`waterbear: cannot find the package folder above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  root = dir;
  return dir;
}

/** Absolute path of a file shipped with the package, e.g. packageFile('proto/replication.proto'). */
export function packageFile(relative: string): string {
  return join(packageRoot(), relative);
}
