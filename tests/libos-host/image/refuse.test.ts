import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { isWaterbearError, WaterbearError } from '../../../libos-host/errors.js';
import { formatReport, inspectModule } from '../../../libos-host/image/inspect.js';
import { prepareImage } from '../../../libos-host/image/prepare.js';
import { REPO } from '../../helpers/lvm.js';
import { wat } from './helpers.js';

const START = '(func (export "_start"))';
const MEMORY = '(memory (export "memory") 1)';

async function refusal(bytes: Uint8Array): Promise<WaterbearError> {
  const err = await prepareImage(bytes, { cacheDir: null }).then(
    () => { throw new Error('prepareImage accepted the module'); },
    (e: unknown) => e,
  );
  if (!(err instanceof WaterbearError)) throw err;
  return err;
}

test('a non-wasm file is refused with WB_INVALID_MODULE', async (t) => {
  const text = new TextEncoder().encode('#!/bin/sh\necho hello\n');
  const err = await refusal(text);
  t.is(err.code, 'WB_INVALID_MODULE');
  t.regex(err.message, /not a WebAssembly module/);
  t.throws(() => inspectModule(text), { code: 'WB_INVALID_MODULE' } as never);
  t.is((await refusal(new Uint8Array(0))).code, 'WB_INVALID_MODULE');
});

test('WebAssembly text is refused with WB_INVALID_MODULE and a hint to assemble it', async (t) => {
  const err = await refusal(new TextEncoder().encode(`(module ${MEMORY} ${START})`));
  t.is(err.code, 'WB_INVALID_MODULE');
  t.regex(err.message, /\.wat/);
});

test('a truncated module is refused with WB_INVALID_MODULE', async (t) => {
  const bytes = await wat(`(module ${MEMORY} ${START} (func $f (result i32) (i32.const 42)))`);
  const err = await refusal(bytes.subarray(0, bytes.length - 3));
  t.is(err.code, 'WB_INVALID_MODULE');
});

test('an invalid module is refused with WB_INVALID_MODULE carrying the validation message', async (t) => {
  const good = await wat(`(module ${MEMORY} (func (export "_start") (drop (i32.const 7))))`);
  // Turn `i32.const 7; drop` into `f32.const…`-less garbage: replace the drop (0x1a) by i32.eqz (0x45),
  // leaving a value on the stack of a function that returns nothing: a type error.
  const bad = Uint8Array.from(good);
  const at = bad.lastIndexOf(0x1a);
  bad[at] = 0x45;
  t.false(WebAssembly.validate(bad));
  const err = await refusal(bad);
  t.is(err.code, 'WB_INVALID_MODULE');
  t.regex(err.message, /invalid WebAssembly module: .+/);
  t.is(typeof err.details?.validation, 'string');
});

test('a module with two unsupported imports is refused with one WB_UNSUPPORTED_IMPORT naming both', async (t) => {
  const bytes = await wat(`(module
    (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
    (import "env" "emscripten_sleep" (func (param i32)))
    (import "wasi_snapshot_preview1" "sock_open" (func (param i32 i32 i32) (result i32)))
    ${MEMORY} ${START})`);
  const err = await refusal(bytes);
  t.is(err.code, 'WB_UNSUPPORTED_IMPORT');
  t.regex(err.message, /env\.emscripten_sleep/);
  t.regex(err.message, /wasi_snapshot_preview1\.sock_open/);
  t.notRegex(err.message, /wasi_snapshot_preview1\.fd_write[,.]/);
  t.deepEqual(err.details?.imports, ['env.emscripten_sleep', 'wasi_snapshot_preview1.sock_open']);

  const report = inspectModule(bytes);
  t.false(report.runnable);
  t.deepEqual(report.imports.map((i) => i.supported), [true, false, false]);
  const text = formatReport(report);
  t.regex(text, /runnable: NO/);
  t.regex(text, /NO +env\.emscripten_sleep/);
  t.regex(text, /ok +wasi_snapshot_preview1\.fd_write/);
});

test('imported memory is refused', async (t) => {
  const bytes = await wat(`(module (import "env" "memory" (memory 2)) ${START})`);
  const err = await refusal(bytes);
  t.is(err.code, 'WB_UNSUPPORTED_IMPORT');
  t.deepEqual(err.details?.imports, ['env.memory']);
  t.regex(err.message, /--import-memory/);
  const report = inspectModule(bytes);
  t.deepEqual(report.memory, { initialPages: 2, maximumPages: null, imported: true, shared: false, memory64: false });
});

test('imported tables and globals are refused', async (t) => {
  const bytes = await wat(`(module
    (import "env" "__indirect_function_table" (table 1 funcref))
    (import "env" "__stack_pointer" (global (mut i32)))
    ${MEMORY} ${START})`);
  const err = await refusal(bytes);
  t.is(err.code, 'WB_UNSUPPORTED_IMPORT');
  t.deepEqual(err.details?.imports, ['env.__indirect_function_table', 'env.__stack_pointer']);
});

test('shared memory (threads) is refused with WB_INVALID_MODULE', async (t) => {
  const bytes = await wat(`(module (memory (export "memory") 1 2 shared) ${START})`);
  const err = await refusal(bytes);
  t.is(err.code, 'WB_INVALID_MODULE');
  t.regex(err.message, /shared memory/);
  t.true(inspectModule(bytes).memory?.shared);
});

test('a 64-bit memory is refused with WB_INVALID_MODULE naming memory64', async (t) => {
  const bytes = await wat(`(module (memory (export "memory") i64 1) ${START})`);
  const err = await refusal(bytes);
  t.is(err.code, 'WB_INVALID_MODULE');
  t.regex(err.message, /memory64/);
});

test('a reactor module without _start is refused with WB_INVALID_MODULE', async (t) => {
  const bytes = await wat(`(module ${MEMORY} (func (export "_initialize")) (func (export "handle") (result i32) (i32.const 1)))`);
  const err = await refusal(bytes);
  t.is(err.code, 'WB_INVALID_MODULE');
  t.regex(err.message, /_start/);
  t.regex(err.message, /reactor/);
  t.false(inspectModule(bytes).hasStart);
});

test('a module without memory is refused with WB_INVALID_MODULE', async (t) => {
  const err = await refusal(await wat(`(module ${START})`));
  t.is(err.code, 'WB_INVALID_MODULE');
  t.regex(err.message, /no memory/);
});

test('a module that does not export its memory as "memory" is refused', async (t) => {
  const err = await refusal(await wat(`(module (memory (export "mem") 1) ${START})`));
  t.is(err.code, 'WB_INVALID_MODULE');
  t.regex(err.message, /"memory"/);
});

test('a module already carrying asyncify exports is refused (prepare the original)', async (t) => {
  const err = await refusal(await wat(`(module ${MEMORY} ${START} (func (export "asyncify_get_state") (result i32) (i32.const 0)))`));
  t.is(err.code, 'WB_INVALID_MODULE');
  t.regex(err.message, /asyncify_get_state/);
});

test('bad options are refused with WB_CONFIG_INVALID', async (t) => {
  const bytes = await wat(`(module ${MEMORY} ${START})`);
  for (const memoryLimitBytes of [0, 1000, -1, Number.NaN, 5 * 1024 ** 3]) {
    const err = await prepareImage(bytes, { cacheDir: null, memoryLimitBytes }).catch((e: unknown) => e);
    t.true(isWaterbearError(err, 'WB_CONFIG_INVALID'), `memoryLimitBytes ${memoryLimitBytes}`);
  }
});

test('a WASI function imported with the wrong signature is refused with WB_UNSUPPORTED_IMPORT naming both signatures', async (t) => {
  const bytes = await wat(`(module
    (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func (param i64) (result f32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func (param i32) (result i32)))
    ${MEMORY} ${START})`);
  const err = await refusal(bytes);
  t.is(err.code, 'WB_UNSUPPORTED_IMPORT');
  t.deepEqual(err.details?.imports, ['wasi_snapshot_preview1.fd_write', 'wasi_snapshot_preview1.proc_exit']);
  t.deepEqual(err.details?.signatures, [
    { import: 'wasi_snapshot_preview1.fd_write', expected: '(i32, i32, i32, i32) -> i32', declared: '(i64) -> f32' },
    { import: 'wasi_snapshot_preview1.proc_exit', expected: '(i32) -> ()', declared: '(i32) -> i32' },
  ]);
  t.regex(err.message, /fd_write as \(i64\) -> f32, but WASI preview 1 defines it as \(i32, i32, i32, i32\) -> i32/);

  const report = inspectModule(bytes);
  t.false(report.runnable);
  t.deepEqual(report.imports.map((i) => i.supported), [true, false, false]);
  t.regex(formatReport(report), /NO +wasi_snapshot_preview1\.fd_write \(i64\) -> f32/);
  t.regex(formatReport(report), /ok +wasi_snapshot_preview1\.clock_time_get\n/);
});

test('every bundled guest imports its WASI functions with their WASI signatures', (t) => {
  const dir = join(REPO, 'guests');
  const files = [...readdirSync(dir).map((f) => join(dir, f)), ...readdirSync(join(dir, 'test')).map((f) => join(dir, 'test', f))].filter((f) => f.endsWith('.wasm'));
  t.true(files.length >= 5, files.join(', '));
  for (const f of files) {
    const report = inspectModule(new Uint8Array(readFileSync(f)));
    t.true(report.runnable, `${f}:\n${formatReport(report)}`);
    t.true(report.imports.every((i) => i.signature !== undefined), f);
  }
});
