/**
 * Test helpers for image preparation: build small guests (C with @yowasp/clang, or WAT with
 * binaryen), and run them under a minimal WASI shim.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBinaryen } from '../../../libos-host/image/binaryen-loader.js';

/** Compiled test guests, keyed by source and flags, so each is compiled once (clang takes ~3 s). */
const CLANG_CACHE_DIR = join(tmpdir(), 'waterbear-image-test-clang');

type ClangTree = { [name: string]: ClangTree | string | Uint8Array };
type RunClang = (args: string[], files: ClangTree, options: {
  stderr?: (bytes: Uint8Array | null) => void; fetchProgress?: () => void;
}) => Promise<ClangTree | undefined>;

/** Compile a C source for wasm32-wasip1 (-O2 by default), cached by content. */
export async function compileC(source: string, flags: string[] = []): Promise<Uint8Array> {
  const args = ['clang', '--target=wasm32-wasip1', '-O2', ...flags, 'guest.c', '-o', 'guest.wasm'];
  const key = createHash('sha256').update(JSON.stringify(args)).update('\0').update(source).digest('hex').slice(0, 32);
  const path = join(CLANG_CACHE_DIR, `${key}.wasm`);
  try {
    return new Uint8Array(readFileSync(path));
  } catch {
    // not cached yet
  }
  // runClang exists at run time but is missing from the package's type declarations.
  const clang = (await import('@yowasp/clang')) as unknown as { runClang: RunClang };
  let stderr = '';
  const decoder = new TextDecoder();
  let out: ClangTree | undefined;
  try {
    out = await clang.runClang(args, { 'guest.c': source }, {
      stderr: (b: Uint8Array | null) => { if (b !== null) stderr += decoder.decode(b); },
      fetchProgress: () => {},
    });
  } catch (err) {
    throw new Error(`clang failed: ${stderr}`, { cause: err });
  }
  const wasm = out?.['guest.wasm'];
  if (!(wasm instanceof Uint8Array)) throw new Error(`clang produced no guest.wasm: ${stderr}`);
  mkdirSync(CLANG_CACHE_DIR, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, wasm);
  renameSync(tmp, path);
  return wasm;
}

/**
 * Assemble WebAssembly text with binaryen, with the features Node 20 accepts plus threads and
 * memory64 (for refusal tests). Not Features.All: that would emit newer encodings (compact imports).
 */
export async function wat(text: string): Promise<Uint8Array> {
  const binaryen = await loadBinaryen();
  const m = binaryen.parseText(text);
  const debugInfo = binaryen.getDebugInfo();
  try {
    const F = binaryen.Features;
    m.setFeatures(F.MutableGlobals | F.NontrappingFPToInt | F.SignExt | F.SIMD128 | F.BulkMemory | F.BulkMemoryOpt |
      F.Multivalue | F.ReferenceTypes | F.TailCall | F.Atomics | F.Memory64);
    binaryen.setDebugInfo(true); // keep $names in the name section
    return m.emitBinary();
  } finally {
    binaryen.setDebugInfo(debugInfo);
    m.dispose();
  }
}

/** proc_exit from the shim: unwinds the guest with its exit code. */
export class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`proc_exit(${code})`);
  }
}

export interface MiniWasi {
  /** The import object for `new WebAssembly.Instance(module, imports)`. */
  imports: WebAssembly.Imports;
  /** Everything written to fd 1 and 2. */
  stdout(): string;
  stderr(): string;
  /** Attach the instance's memory (after instantiation). */
  setMemory(memory: WebAssembly.Memory): void;
  /** Count of calls per import name. */
  calls: Map<string, number>;
}

const ERRNO_SUCCESS = 0;
const ERRNO_BADF = 8;
const ERRNO_NOSYS = 52;
const ERRNO_SPIPE = 70;

/**
 * A minimal WASI preview 1 shim with only what the test guests need: fd_write to fd 1/2
 * (captured), empty args and environment, a fixed clock, deterministic random bytes, proc_exit
 * (throws ProcExit), fd_fdstat_get (character device). Everything else returns ENOSYS. Imports the
 * module does not declare are ignored; `wrap` may replace any function (e.g. to unwind there).
 */
export function miniWasi(
  module: WebAssembly.Module,
  wrap?: (name: string, fn: (...args: number[]) => number) => (...args: number[]) => number,
  env: string[] = [],
): MiniWasi {
  let memory: WebAssembly.Memory | null = null;
  const envBytes = env.map((e) => new TextEncoder().encode(`${e}\0`));
  const out = { 1: '', 2: '' } as Record<number, string>;
  const decoder = new TextDecoder();
  let randomState = 0x9e3779b9;
  const calls = new Map<string, number>();
  const mem = (): DataView => {
    if (memory === null) throw new Error('miniWasi: memory not attached');
    return new DataView(memory.buffer);
  };
  const impl: Record<string, (...args: number[]) => number> = {
    fd_write(fd, iovs, iovsLen, nwritten) {
      const dv = mem();
      if (fd !== 1 && fd !== 2) return ERRNO_BADF;
      let total = 0;
      for (let i = 0; i < iovsLen; i++) {
        const ptr = dv.getUint32(iovs + i * 8, true);
        const len = dv.getUint32(iovs + i * 8 + 4, true);
        out[fd] += decoder.decode(new Uint8Array(dv.buffer, ptr, len));
        total += len;
      }
      dv.setUint32(nwritten, total, true);
      return ERRNO_SUCCESS;
    },
    proc_exit(code) {
      throw new ProcExit(code);
    },
    random_get(buf, len) {
      const bytes = new Uint8Array(mem().buffer, buf, len);
      for (let i = 0; i < len; i++) {
        randomState = (Math.imul(randomState, 1103515245) + 12345) >>> 0;
        bytes[i] = randomState >>> 24;
      }
      return ERRNO_SUCCESS;
    },
    args_sizes_get(argc, argvBufSize) {
      const dv = mem();
      dv.setUint32(argc, 0, true);
      dv.setUint32(argvBufSize, 0, true);
      return ERRNO_SUCCESS;
    },
    args_get() { return ERRNO_SUCCESS; },
    environ_sizes_get(count, bufSize) {
      const dv = mem();
      dv.setUint32(count, envBytes.length, true);
      dv.setUint32(bufSize, envBytes.reduce((n, b) => n + b.length, 0), true);
      return ERRNO_SUCCESS;
    },
    environ_get(environ, buf) {
      const dv = mem();
      let at = buf;
      envBytes.forEach((b, i) => {
        dv.setUint32(environ + i * 4, at, true);
        new Uint8Array(dv.buffer, at, b.length).set(b);
        at += b.length;
      });
      return ERRNO_SUCCESS;
    },
    clock_time_get(_id, _precision, timePtr) {
      mem().setBigUint64(timePtr, 1_700_000_000_000_000_000n, true);
      return ERRNO_SUCCESS;
    },
    fd_fdstat_get(fd, statPtr) {
      if (fd > 2) return ERRNO_BADF;
      const dv = mem();
      for (let i = 0; i < 24; i++) dv.setUint8(statPtr + i, 0);
      dv.setUint8(statPtr, 2); // character device
      return ERRNO_SUCCESS;
    },
    fd_seek() { return ERRNO_SPIPE; },
    fd_close() { return ERRNO_SUCCESS; },
  };
  const wasi: Record<string, (...args: number[]) => number> = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module !== 'wasi_snapshot_preview1' || imp.kind !== 'function') continue;
    const base = impl[imp.name] ?? (() => ERRNO_NOSYS);
    const counted = (...args: number[]): number => {
      calls.set(imp.name, (calls.get(imp.name) ?? 0) + 1);
      return base(...args.map((a) => (typeof a === 'bigint' ? Number(a) : a)));
    };
    wasi[imp.name] = wrap ? wrap(imp.name, counted) : counted;
  }
  return {
    imports: { wasi_snapshot_preview1: wasi },
    stdout: () => out[1],
    stderr: () => out[2],
    setMemory: (m) => { memory = m; },
    calls,
  };
}

/** Instantiate a module with the shim and run `_start`; returns the exit code and output. */
export function runGuest(module: WebAssembly.Module, before?: (instance: WebAssembly.Instance) => void, env: string[] = []): {
  code: number; stdout: string; stderr: string; instance: WebAssembly.Instance;
} {
  const shim = miniWasi(module, undefined, env);
  const instance = new WebAssembly.Instance(module, shim.imports);
  shim.setMemory(instance.exports.memory as WebAssembly.Memory);
  before?.(instance);
  let code = 0;
  try {
    (instance.exports._start as () => void)();
  } catch (err) {
    if (!(err instanceof ProcExit)) throw err;
    code = err.code;
  }
  return { code, stdout: shim.stdout(), stderr: shim.stderr(), instance };
}

/** Stub imports that just return 0, for instantiating without running. */
export function stubImports(module: WebAssembly.Module): WebAssembly.Imports {
  const wasi: Record<string, () => number> = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind === 'function') wasi[imp.name] = () => 0;
  }
  return { wasi_snapshot_preview1: wasi };
}
