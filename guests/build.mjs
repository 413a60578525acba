#!/usr/bin/env node
// Builds the example and test guests (C, WASI preview 1) to WebAssembly.
//
//   node guests/build.mjs                 every guests/*.c and guests/test/*.c
//                                         to a .wasm next to it, plus
//                                         guests/manifest.json
//   node guests/build.mjs --native OUT    the service guests (kv, echo,
//                                         memstress) with the machine's cc, into
//                                         OUT, for benchmarks against native
//
// The wasm build uses only the npm package @yowasp/clang (clang and a current
// wasi-libc compiled to WebAssembly), so it needs nothing beyond `npm install`,
// and it is deterministic: the same sources give the same bytes (no debug info,
// no paths, no timestamps). The "name" section is kept on purpose: waterbear
// prints guest function names when a guest traps.
//
// Shared code lives in guests/lib/. A guest that includes "x.h" from there is
// linked with lib/x.c when that file exists.
//
// manifest.json records, per .wasm, the exact clang command line (inputs
// relative to guests/, output at the root), the sha256 of every input file
// and of the output, so anyone can reproduce a binary from the manifest alone.
// tests/guests/ checks that the committed binaries match their sources and
// rebuilds one to prove the build is deterministic.

import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const GUESTS_DIR = path.dirname(fileURLToPath(import.meta.url));
const LIB_DIR = 'lib';
const MANIFEST_PATH = path.join(GUESTS_DIR, 'manifest.json');
const MANIFEST_VERSION = 1;

const CLANG_FLAGS = ['--target=wasm32-wasip1', '-O2', '-Wall', '-Wextra', '-Werror', `-I${LIB_DIR}`];

/**
 * netloop polls every client at once, and wasi-libc's poll() keeps its
 * per-descriptor WASI subscriptions and events (up to 160 bytes per
 * descriptor) in variable-length arrays on the stack. The default 64 KiB stack
 * would overflow at a few hundred clients; 4 MiB serves about 26,000.
 * wasm-ld puts the stack first, so an overflow traps instead of corrupting data.
 */
const NETLOOP_STACK_BYTES = 4 * 1024 * 1024;

/** Extra link flags a guest gets when it is linked with a given lib/ source. */
const LINK_FLAGS_BY_LIBRARY = {
  'lib/netloop.c': [`-Wl,-z,stack-size=${NETLOOP_STACK_BYTES}`],
};

/** Guests built by --native, with guests/native/native-listen.c providing fd 3. */
const NATIVE_GUESTS = ['kv', 'echo', 'memstress'];
const NATIVE_FLAGS = ['-O2', '-Wall', '-Wextra', '-DWB_NATIVE', `-I${path.join(GUESTS_DIR, LIB_DIR)}`];
const NATIVE_SHIM = 'native/native-listen.c';

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const read = (rel) => readFileSync(path.join(GUESTS_DIR, rel));

/** Guest main sources, relative to guests/, sorted: '*.c' and 'test/*.c'. */
function guestSources() {
  const list = (dir) =>
    readdirSync(path.join(GUESTS_DIR, dir))
      .filter((f) => f.endsWith('.c'))
      .map((f) => (dir === '.' ? f : `${dir}/${f}`));
  return [...list('.'), ...list('test')].sort();
}

/** `#include "x"` targets of a source, resolved next to it or in lib/. */
function localIncludes(rel) {
  const found = [];
  const text = read(rel).toString('utf8');
  for (const m of text.matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) {
    const candidates = [path.posix.join(path.posix.dirname(rel), m[1]), path.posix.join(LIB_DIR, m[1])];
    const hit = candidates.find((c) => existsSync(path.join(GUESTS_DIR, c)));
    if (!hit) throw new Error(`${rel}: cannot find included file "${m[1]}"`);
    found.push(path.posix.normalize(hit));
  }
  return found;
}

/**
 * Everything a guest is built from: its translation units (main source first,
 * then lib/ sources it pulls in) and all files they include.
 */
function guestInputs(mainSource) {
  const units = [mainSource];
  const files = new Set([mainSource]);
  for (let i = 0; i < units.length; i++) {
    const queue = [units[i]];
    while (queue.length) {
      for (const inc of localIncludes(queue.pop())) {
        if (files.has(inc)) continue;
        files.add(inc);
        queue.push(inc);
        const impl = inc.replace(/\.h$/, '.c');
        if (inc.startsWith(`${LIB_DIR}/`) && impl !== inc && existsSync(path.join(GUESTS_DIR, impl)) && !units.includes(impl)) {
          units.push(impl);
          files.add(impl);
        }
      }
    }
  }
  return { units, files: [...files].sort() };
}

/**
 * The full clang command line for a guest, as recorded in the manifest. The
 * output goes to the root of the virtual file system under the guest's own
 * name: wasm-ld records it as the module name in the name section, so a trap
 * reads "hello.wasm.main", not "test/hello.wasm.main" or "a.out.main".
 */
function clangArgs(units, output) {
  const linkFlags = units.flatMap((u) => LINK_FLAGS_BY_LIBRARY[u] ?? []);
  return ['clang', ...CLANG_FLAGS, ...linkFlags, ...units, '-o', output];
}

/** @yowasp/clang's virtual file tree holding the given files (relative to guests/). */
function virtualTree(files, readFile) {
  const tree = {};
  for (const rel of files) {
    const parts = rel.split('/');
    let dir = tree;
    for (const p of parts.slice(0, -1)) dir = dir[p] ??= {};
    dir[parts.at(-1)] = new Uint8Array(readFile(rel));
  }
  return tree;
}

/**
 * Compile with @yowasp/clang. `args` is a manifest-style command line and
 * `files` the inputs relative to guests/; `readFile(rel)` returns their bytes.
 * Returns the wasm bytes.
 */
async function compileWasm(args, files, readFile = read) {
  const { runClang } = await import('@yowasp/clang');
  let out;
  try {
    out = await runClang(args, virtualTree(files, readFile));
  } catch (err) {
    // @yowasp/clang throws Exit with the compiler's status; diagnostics went to stderr.
    throw new Error(`clang failed (${args.filter((a) => a.endsWith('.c')).join(' ')}): ${err.message}`, { cause: err });
  }
  const output = args[args.indexOf('-o') + 1];
  const wasm = out[output];
  if (!(wasm instanceof Uint8Array)) throw new Error(`clang produced no ${output}`);
  return wasm;
}

function toolchainVersion() {
  const pkg = JSON.parse(readFileSync(path.join(GUESTS_DIR, '..', 'node_modules', '@yowasp', 'clang', 'package.json'), 'utf8'));
  return `@yowasp/clang ${pkg.version}`;
}

async function buildWasm() {
  const guests = {};
  const outputs = new Set();
  for (const main of guestSources()) {
    const { units, files } = guestInputs(main);
    const wasmRel = main.replace(/\.c$/, '.wasm');
    const output = path.posix.basename(wasmRel);
    if (outputs.has(output)) throw new Error(`two guests named ${output}: rename one`);
    outputs.add(output);
    const args = clangArgs(units, output);
    const started = Date.now();
    const wasm = await compileWasm(args, files);
    writeFileSync(path.join(GUESTS_DIR, wasmRel), wasm);
    guests[wasmRel] = {
      clang: args,
      sources: Object.fromEntries(files.map((f) => [f, sha256(read(f))])),
      wasm: sha256(wasm),
      bytes: wasm.length,
    };
    console.log(`${wasmRel.padEnd(20)} ${String(wasm.length).padStart(7)} bytes  ${Date.now() - started} ms`);
  }
  const manifest = { version: MANIFEST_VERSION, toolchain: toolchainVersion(), guests };
  writeFileSync(MANIFEST_PATH, `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), MANIFEST_PATH)}`);
}

function buildNative(outDir) {
  mkdirSync(outDir, { recursive: true });
  for (const name of NATIVE_GUESTS) {
    const { units } = guestInputs(`${name}.c`);
    const sources = [...units, NATIVE_SHIM].map((u) => path.join(GUESTS_DIR, u));
    const output = path.join(outDir, name);
    const res = spawnSync('cc', [...NATIVE_FLAGS, ...sources, '-o', output], { stdio: 'inherit' });
    if (res.error) throw new Error(`cannot run cc: ${res.error.message}`, { cause: res.error });
    if (res.status !== 0) throw new Error(`cc failed for ${name} (status ${res.status})`);
    console.log(`${output}  (run with WB_NATIVE_LISTEN=127.0.0.1:7777)`);
  }
}

async function main(argv) {
  if (argv.length === 0) return buildWasm();
  if (argv[0] === '--native' && argv.length === 2) return buildNative(path.resolve(argv[1]));
  console.error('usage: node guests/build.mjs [--native OUTDIR]');
  process.exitCode = 2;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(`build-guests: ${err.message}`);
    process.exitCode = 1;
  });
}
