import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

/**
 * The committed guest binaries must be exactly what their committed sources
 * build to. guests/manifest.json (written by `npm run build:guests`) records,
 * per .wasm, the clang command line, the sha256 of each input and of the output.
 */

const GUESTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'guests');
const REBUILD_HINT = 'run `npm run build:guests` and commit the result';
/** Rebuilt from scratch by the determinism test: small and quick to compile. */
const REBUILT_GUEST = 'test/hello.wasm';
const WASI_MODULE = 'wasi_snapshot_preview1';

interface ManifestEntry {
  clang: string[];
  sources: Record<string, string>;
  wasm: string;
  bytes: number;
}

interface Manifest {
  version: number;
  toolchain: string;
  guests: Record<string, ManifestEntry>;
}

type Tree = { [name: string]: Tree | string | Uint8Array };
type RunClang = (args: string[], files: Tree, options: { fetchProgress?: () => void }) => Promise<Tree | undefined>;

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const guestFile = (rel: string): Buffer => readFileSync(path.join(GUESTS_DIR, rel));
const manifest = JSON.parse(guestFile('manifest.json').toString('utf8')) as Manifest;

/** Guest main sources, as build.mjs finds them: guests/*.c and guests/test/*.c. */
function guestSources(): string[] {
  const list = (dir: string): string[] =>
    readdirSync(path.join(GUESTS_DIR, dir))
      .filter((f) => f.endsWith('.c'))
      .map((f) => (dir === '.' ? f : `${dir}/${f}`));
  return [...list('.'), ...list('test')].sort();
}

test('the manifest is version 1 and lists exactly the guest sources', (t) => {
  t.is(manifest.version, 1);
  const expected = guestSources().map((c) => c.replace(/\.c$/, '.wasm'));
  t.deepEqual(Object.keys(manifest.guests).sort(), expected, `a guest was added or removed: ${REBUILD_HINT}`);
});

test('every guest source is unchanged since its .wasm was built', (t) => {
  for (const [wasm, entry] of Object.entries(manifest.guests)) {
    t.true(Object.keys(entry.sources).length > 0, `${wasm} lists no sources`);
    for (const [source, hash] of Object.entries(entry.sources)) {
      t.is(sha256(guestFile(source)), hash, `guests/${source} changed since ${wasm} was built: ${REBUILD_HINT}`);
    }
  }
});

test('every committed .wasm is the one the manifest recorded', (t) => {
  for (const [wasm, entry] of Object.entries(manifest.guests)) {
    const bytes = guestFile(wasm);
    t.is(bytes.length, entry.bytes, `guests/${wasm} size`);
    t.is(sha256(bytes), entry.wasm, `guests/${wasm} differs from its build: ${REBUILD_HINT}`);
  }
});

test('every guest imports only WASI preview 1 and exports memory and _start', (t) => {
  for (const wasm of Object.keys(manifest.guests)) {
    const mod = new WebAssembly.Module(new Uint8Array(guestFile(wasm)));
    const foreign = WebAssembly.Module.imports(mod).filter((i) => i.module !== WASI_MODULE);
    t.deepEqual(foreign, [], `${wasm} imports outside ${WASI_MODULE}`);
    const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
    t.true(exports.includes('memory') && exports.includes('_start'), `${wasm} exports ${exports.join(', ')}`);
  }
});

test(`rebuilding ${REBUILT_GUEST} from the manifest gives the committed bytes (the build is deterministic)`, async (t) => {
  const pkg = JSON.parse(readFileSync(path.join(GUESTS_DIR, '..', 'node_modules', '@yowasp', 'clang', 'package.json'), 'utf8')) as { version: string };
  t.is(`@yowasp/clang ${pkg.version}`, manifest.toolchain, `the installed compiler differs from the one that built the guests: ${REBUILD_HINT}`);

  const entry = manifest.guests[REBUILT_GUEST];
  t.truthy(entry, `${REBUILT_GUEST} is missing from the manifest`);
  // A fresh virtual file system holding only the recorded inputs.
  const tree: Tree = {};
  for (const source of Object.keys(entry.sources)) {
    const parts = source.split('/');
    let dir = tree;
    for (const p of parts.slice(0, -1)) dir = (dir[p] ??= {}) as Tree;
    dir[parts[parts.length - 1]] = new Uint8Array(guestFile(source));
  }
  // runClang exists at run time but is missing from the package's type declarations.
  const { runClang } = (await import('@yowasp/clang')) as unknown as { runClang: RunClang };
  const out = await runClang(entry.clang, tree, { fetchProgress: () => {} });
  const output = entry.clang[entry.clang.indexOf('-o') + 1];
  const rebuilt = out?.[output];
  t.true(rebuilt instanceof Uint8Array, `clang produced no ${output}`);
  t.true(Buffer.from(rebuilt as Uint8Array).equals(guestFile(REBUILT_GUEST)), `rebuilt ${REBUILT_GUEST} differs from the committed one`);
});
