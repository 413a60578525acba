import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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

/** Path of the entry point of an installed npm package, as `require.resolve` finds it from here. */
export function installedModulePath(name: string): string {
  return createRequire(import.meta.url).resolve(name);
}

/** The `version` in an installed npm package's package.json ('unknown' when it has none). */
export function installedPackageVersion(name: string): string {
  const pkg = JSON.parse(readFileSync(join(dirname(installedModulePath(name)), 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
