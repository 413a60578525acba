/**
 * Loading binaryen.js lazily: importing it costs about half a second (a 14 MB module that
 * instantiates its own wasm), and a cache hit does not need it at all.
 *
 * Under tsx (tests, development), tsx's ESM load hook rewrites the one dynamic `import()` inside
 * binaryen.js and builds a source map of the 14 MB file, which takes ~15 s per process. There we
 * import binaryen's file URL tagged with a tsx namespace that no hook is registered for, so tsx
 * passes it straight to Node's own loader. This only affects load time, never behaviour: if tsx
 * changes, the worst case is the slow load again.
 */
import { pathToFileURL } from 'node:url';
import type binaryenModule from 'binaryen';
import { installedModulePath, installedPackageVersion } from '../platform/package-files.js';

export type Binaryen = typeof binaryenModule;

let loading: Promise<Binaryen> | null = null;
let version: string | null = null;

/** The binaryen.js module, imported on first use. */
export function loadBinaryen(): Promise<Binaryen> {
  loading ??= importBinaryen();
  return loading;
}

/** True when this process runs TypeScript through tsx's loader hooks. */
function underTsx(): boolean {
  return process.execArgv.some((arg) => /(^|[=/\\@])tsx([/\\@]|$)/.test(arg));
}

async function importBinaryen(): Promise<Binaryen> {
  if (underTsx()) {
    const url = `${pathToFileURL(installedModulePath('binaryen')).href}?tsx-namespace=waterbear-binaryen`;
    try {
      const m = (await import(url)) as { default: Binaryen };
      return m.default;
    } catch {
      // fall back to the ordinary (slow under tsx) import
    }
  }
  return (await import('binaryen')).default;
}

/** The installed binaryen.js version (from its package.json), without importing it. Part of the cache key. */
export function binaryenVersion(): string {
  version ??= installedPackageVersion('binaryen');
  return version;
}

/**
 * Run `fn` (synchronous binaryen calls) capturing what binaryen prints: its validator and fatal
 * errors go to stdout/stderr, which we want in error messages instead of on the console.
 */
export function captureOutput<T>(fn: () => T): { result?: T; error?: unknown; output: string } {
  const out = process.stdout.write;
  const err = process.stderr.write;
  let output = '';
  const capture = ((chunk: string | Uint8Array): boolean => {
    output += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = capture;
  process.stderr.write = capture;
  try {
    return { result: fn(), output };
  } catch (error) {
    return { error, output };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}
