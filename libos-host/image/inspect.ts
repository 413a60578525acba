/**
 * Inspecting a guest module: what it imports and exports, its memory, and whether waterbear can
 * run it. This is the first step of image preparation and the body of `waterbear inspect`.
 * It needs neither binaryen nor a compiled module, so it is fast.
 */
import { WaterbearError } from '../errors.js';
import { wasiSignature, WASI_FUNCTIONS, WASI_MODULE, type WasiFunctionName } from '../wasi/wasi-imports.js';
import { isReservedExportName, MEMORY_EXPORT, START_EXPORT } from './image-names.js';
import {
  asBufferSource, hasWasmMagic, readStructure, WasmFormatError, WASM_PAGE_BYTES,
  type FuncType, type WasmImport, type WasmStructure,
} from './wasm-binary.js';

export interface ModuleReport {
  /**
   * Every import, in order. `supported` is true only for WASI preview 1 functions the library OS
   * provides, imported with their WASI signature; `signature` is a function import's declared type.
   */
  imports: { module: string; name: string; kind: string; supported: boolean; signature?: string }[];
  /** Every export, in order. `kind` is 'function' | 'table' | 'memory' | 'global' | 'tag'. */
  exports: { name: string; kind: string }[];
  /** The module's (first) memory, imported or defined; null when it has none. Sizes in 64 KiB pages. */
  memory: { initialPages: number; maximumPages: number | null; imported: boolean; shared: boolean; memory64: boolean } | null;
  /** True when the module exports a `_start` function (a WASI command). */
  hasStart: boolean;
  /** True when `problems` is empty: preparation will accept the module. */
  runnable: boolean;
  /** Why waterbear cannot run the module, each with what to do about it. Empty when runnable. */
  problems: string[];
  /**
   * What may still stop it that inspection cannot tell without running guest code (phrased like
   * problems): a start section, which runs when the module is instantiated.
   */
  notes: string[];
}

const WASI_FUNCTION_SET: ReadonlySet<string> = new Set(WASI_FUNCTIONS);

/** True when this import names a function of WASI preview 1 (whatever its declared signature). */
function isWasiFunction(imp: { module: string; name: string; kind: string }): boolean {
  return imp.kind === 'function' && imp.module === WASI_MODULE && WASI_FUNCTION_SET.has(imp.name);
}

/** `(i32, i64) -> i32`: a function type as messages print it. */
export function formatFuncType(t: FuncType): string {
  const results = t.results.length === 1 ? t.results[0] : `(${t.results.join(', ')})`;
  return `(${t.params.join(', ')}) -> ${results}`;
}

/**
 * For an import of a WASI function declared with another type than WASI preview 1 gives it, the
 * expected and the declared type (as formatFuncType prints them); otherwise null.
 */
export function wasiSignatureMismatch(imp: WasmImport): { expected: string; declared: string } | null {
  if (!isWasiFunction(imp) || imp.type === undefined) return null;
  const expected = formatFuncType(wasiSignature(imp.name as WasiFunctionName));
  const declared = formatFuncType(imp.type);
  return expected === declared ? null : { expected, declared };
}

/** True when waterbear's library OS provides this import, as declared. */
export function isSupportedImport(imp: WasmImport): boolean {
  return isWasiFunction(imp) && wasiSignatureMismatch(imp) === null;
}

/**
 * Describe a guest module. Problems that stop waterbear from running it are listed in
 * `problems`, not thrown. Throws WB_INVALID_MODULE when `bytes` is not a WebAssembly module or
 * is not a valid one; the message carries the engine's validation message.
 */
export function inspectModule(bytes: Uint8Array): ModuleReport {
  const structure = readValidStructure(bytes);
  return reportFromStructure(structure);
}

/**
 * Parse and validate `bytes`. Throws WB_INVALID_MODULE with a message saying what is wrong and
 * what to do. Exported for `prepareImage`, which also needs the section list.
 */
export function readValidStructure(bytes: Uint8Array): WasmStructure {
  if (!(bytes instanceof Uint8Array)) {
    throw new WaterbearError('WB_INVALID_MODULE', `a guest module must be given as bytes (Uint8Array): got ${typeof bytes}`);
  }
  if (!hasWasmMagic(bytes)) {
    throw new WaterbearError('WB_INVALID_MODULE', `not a WebAssembly module: ${describeNonWasm(bytes)}. ` +
      'Give waterbear a .wasm file built for wasm32-wasip1 (e.g. clang --target=wasm32-wasip1 -O2 main.c -o main.wasm).');
  }
  let structure: WasmStructure;
  try {
    structure = readStructure(bytes);
  } catch (err) {
    if (!(err instanceof WasmFormatError)) throw err;
    throw new WaterbearError('WB_INVALID_MODULE', `invalid WebAssembly module: ${err.message}. ` +
      'The file is truncated or corrupt, or is not a core module; rebuild it for wasm32-wasip1.', { cause: err });
  }
  if (!WebAssembly.validate(asBufferSource(bytes))) {
    let engineMessage = 'the engine rejected it';
    try {
      new WebAssembly.Module(asBufferSource(bytes));
    } catch (err) {
      engineMessage = err instanceof Error ? err.message : String(err);
    }
    const hints = structureProblems(structure).filter((p) => /memory64|shared memory|page size/.test(p));
    throw new WaterbearError('WB_INVALID_MODULE', `invalid WebAssembly module: ${engineMessage}. ` +
      (hints.length > 0 ? `The module ${hints.join('; it ')}.` :
        'Rebuild it for wasm32-wasip1 with a toolchain whose output Node 20 accepts (e.g. clang 22 via @yowasp/clang).'),
      { details: { validation: engineMessage } });
  }
  return structure;
}

/** Build the report from an already-validated structure. */
export function reportFromStructure(s: WasmStructure): ModuleReport {
  const imports = s.imports.map((i) => ({
    module: i.module, name: i.name, kind: i.kind, supported: isSupportedImport(i), ...(i.type !== undefined ? { signature: formatFuncType(i.type) } : {}),
  }));
  const exports = s.exports.map((e) => ({ name: e.name, kind: e.kind }));
  const importedMemory = s.imports.find((i) => i.kind === 'memory');
  const limits = importedMemory?.memory ?? s.memories[0];
  const memory = limits === undefined ? null : {
    initialPages: limits.initialPages,
    maximumPages: limits.maximumPages,
    imported: importedMemory !== undefined,
    shared: limits.shared,
    memory64: limits.memory64,
  };
  const hasStart = s.exports.some((e) => e.name === START_EXPORT && e.kind === 'function');
  const problems = structureProblems(s);
  return { imports, exports, memory, hasStart, runnable: problems.length === 0, problems, notes: structureNotes(s) };
}

function importLabel(i: { module: string; name: string }): string {
  return `${i.module}.${i.name}`;
}

/** Every reason waterbear cannot run the module, each phrased to follow "The module …". */
function structureProblems(s: WasmStructure): string[] {
  const problems: string[] = [];
  const unsupportedFunctions = s.imports.filter((i) => i.kind === 'function' && !isSupportedImport(i));
  for (const i of unsupportedFunctions) {
    const mismatch = wasiSignatureMismatch(i);
    problems.push(mismatch !== null
      ? `imports ${importLabel(i)} as ${mismatch.declared}, but WASI preview 1 defines it as ${mismatch.expected}: ` +
        'fix its declaration, or rebuild the module against wasi-libc for wasm32-wasip1'
      : i.module === WASI_MODULE
      ? `imports ${importLabel(i)}, which is not a WASI preview 1 function waterbear provides`
      : `imports function ${importLabel(i)}, which waterbear does not provide (only ${WASI_MODULE} functions are available; ` +
        'build for wasm32-wasip1 and link without --allow-undefined so that no symbol is left to the host)');
  }
  for (const i of s.imports) {
    if (i.kind === 'memory') {
      problems.push(`imports its memory (${importLabel(i)}); waterbear gives each guest its own memory: link without --import-memory`);
    } else if (i.kind === 'table') {
      problems.push(`imports a table (${importLabel(i)}); link without --import-table`);
    } else if (i.kind === 'global') {
      problems.push(`imports global ${importLabel(i)}; dynamically linked (PIC) modules are not supported: build a static executable`);
    } else if (i.kind === 'tag') {
      problems.push(`imports exception tag ${importLabel(i)}; only ${WASI_MODULE} functions can be imported`);
    }
  }
  const memories: { limits: NonNullable<WasmImport['memory']> }[] = [
    ...s.imports.filter((i) => i.kind === 'memory' && i.memory !== undefined).map((i) => ({ limits: i.memory! })),
    ...s.memories.map((limits) => ({ limits })),
  ];
  if (memories.length === 0) {
    problems.push('defines no memory; a WASI guest needs one (wasm-ld creates and exports it by default)');
  } else if (memories.length > 1) {
    problems.push(`has ${memories.length} memories; waterbear supports exactly one (no multi-memory)`);
  }
  const first = memories[0]?.limits;
  if (first !== undefined) {
    if (first.shared) problems.push('uses shared memory (WASI threads), which waterbear does not support: build for wasm32-wasip1 without -pthread');
    if (first.memory64) problems.push('uses a 64-bit memory (memory64), which waterbear does not support: build for wasm32-wasip1');
    if (first.pageSizeLog2 !== null) problems.push('uses a custom memory page size, which waterbear does not support');
    if (!first.memory64 && first.maximumPages !== null && first.maximumPages < first.initialPages) {
      problems.push(`declares a memory maximum (${first.maximumPages} pages) below its initial size (${first.initialPages} pages)`);
    }
  }
  const memoryExport = s.exports.find((e) => e.name === MEMORY_EXPORT);
  if (memories.length > 0 && memoryExport === undefined) {
    problems.push(`does not export its memory as "${MEMORY_EXPORT}", which WASI preview 1 requires (wasm-ld does it by default; do not pass --no-export-memory or rename it)`);
  } else if (memoryExport !== undefined && memoryExport.kind !== 'memory') {
    problems.push(`exports "${MEMORY_EXPORT}" as a ${memoryExport.kind}; WASI preview 1 requires it to be the memory`);
  }
  const start = s.exports.find((e) => e.name === START_EXPORT);
  if (start === undefined) {
    problems.push(`exports no ${START_EXPORT} function: it is a reactor or library module (built with -mexec-model=reactor or --no-entry). ` +
      'waterbear runs WASI commands: build an executable with a main() function');
  } else if (start.kind !== 'function') {
    problems.push(`exports ${START_EXPORT} as a ${start.kind}, not a function`);
  }
  for (const e of s.exports) {
    if (isReservedExportName(e.name)) {
      problems.push(`already exports ${e.name}, a name waterbear adds during preparation (was it prepared or asyncified before? give waterbear the original module)`);
    }
  }
  return problems;
}

/** See ModuleReport.notes. */
function structureNotes(s: WasmStructure): string[] {
  // (A start function must take and return nothing, which no WASI function does: one that is an
  // import is an unsupported one, already a problem.)
  if (s.startFunction === null) return [];
  return [`has a start section (function ${s.startFunction}), which runs when the module is instantiated, before ${START_EXPORT}: ` +
    `waterbear refuses the module then if it calls a WASI function (WB_INVALID_MODULE) or traps (WB_GUEST_TRAP); inspection cannot tell whether it does`];
}

/**
 * Throw when the report lists problems: WB_UNSUPPORTED_IMPORT when any import is unsupported (one
 * error naming every unsupported import in its message and in `details.imports`, as "module.name";
 * a WASI function declared with another type is in `details.signatures` as { import, expected,
 * declared }), otherwise WB_INVALID_MODULE. `details.problems` lists every problem.
 */
export function assertRunnable(report: ModuleReport): void {
  if (report.runnable) return;
  const unsupported = report.imports.filter((i) => !i.supported);
  const problems = report.problems.map((p) => `the module ${p}`);
  const list = problems.map((p) => `\n  - ${p}`).join('');
  if (unsupported.length > 0) {
    const names = unsupported.map(importLabel);
    // A WASI function that is not supported was declared with another signature.
    const signatures = unsupported.filter(isWasiFunction).map((i) => ({
      import: importLabel(i), expected: formatFuncType(wasiSignature(i.name as WasiFunctionName)), declared: i.signature ?? 'unknown',
    }));
    throw new WaterbearError('WB_UNSUPPORTED_IMPORT',
      `guest imports ${names.length === 1 ? 'an item' : `${names.length} items`} that waterbear does not provide${signatures.length > 0 ? ' as declared' : ''}: ${names.join(', ')}. ` +
      `waterbear provides only the WASI preview 1 functions of ${WASI_MODULE}, with their WASI signatures. Problems:${list}`,
      { details: { imports: names, unsupported: unsupported.map((i) => ({ module: i.module, name: i.name, kind: i.kind })), signatures, problems: report.problems } });
  }
  throw new WaterbearError('WB_INVALID_MODULE', `guest module cannot run under waterbear:${list}`, { details: { problems: report.problems } });
}

function describeNonWasm(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'the file is empty';
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 64)).trimStart();
  if (head.startsWith('(module') || head.startsWith('(component')) {
    return 'it is WebAssembly text (.wat); convert it to a binary first (e.g. wat2wasm, or wasm-as from binaryen)';
  }
  if (bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) return 'it is a native ELF executable';
  if (bytes[0] === 0x23 && bytes[1] === 0x21) return 'it is a script (starts with #!)';
  const hex = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `it does not start with the magic number 00 61 73 6d ("\\0asm") but with ${hex}`;
}

function formatPages(pages: number): string {
  const bytes = pages * WASM_PAGE_BYTES;
  const text = bytes >= 1024 ** 3 ? `${+(bytes / 1024 ** 3).toFixed(2)} GiB`
    : bytes >= 1024 ** 2 ? `${+(bytes / 1024 ** 2).toFixed(2)} MiB` : `${bytes / 1024} KiB`;
  return `${pages} page${pages === 1 ? '' : 's'} (${text})`;
}

/** Human-readable report, as printed by `waterbear inspect guest.wasm` (no trailing newline). */
export function formatReport(r: ModuleReport): string {
  const lines: string[] = [];
  lines.push(r.runnable ? `runnable: yes${r.notes.length > 0 ? ' (see the notes)' : ''}` : `runnable: NO (${r.problems.length} problem${r.problems.length === 1 ? '' : 's'})`);
  if (r.memory === null) {
    lines.push('memory: none');
  } else {
    const m = r.memory;
    const attrs = [m.imported ? 'imported' : '', m.shared ? 'shared' : '', m.memory64 ? 'memory64' : ''].filter((a) => a !== '');
    lines.push(`memory: initial ${formatPages(m.initialPages)}, maximum ${m.maximumPages === null ? 'none' : formatPages(m.maximumPages)}` +
      (attrs.length > 0 ? ` [${attrs.join(', ')}]` : ''));
  }
  lines.push(`entry point: ${r.hasStart ? `${START_EXPORT} (WASI command)` : `no ${START_EXPORT}`}`);
  const unsupported = r.imports.filter((i) => !i.supported).length;
  lines.push(`imports: ${r.imports.length}${unsupported > 0 ? ` (${unsupported} unsupported)` : ''}`);
  for (const i of r.imports) {
    const what = i.kind !== 'function' ? ` (${i.kind})` : !i.supported && i.signature !== undefined ? ` ${i.signature}` : '';
    lines.push(`  ${i.supported ? 'ok ' : 'NO '} ${importLabel(i)}${what}`);
  }
  lines.push(`exports: ${r.exports.length}`);
  for (const e of r.exports) lines.push(`  ${e.name} (${e.kind})`);
  if (r.problems.length > 0) {
    lines.push('problems:');
    for (const p of r.problems) lines.push(`  - the module ${p}`);
  }
  if (r.notes.length > 0) {
    lines.push('notes:');
    for (const n of r.notes) lines.push(`  - the module ${n}`);
  }
  return lines.join('\n');
}
