/**
 * A small, dependency-free reader for the parts of a WebAssembly binary that image preparation
 * needs before (or without) loading binaryen: the import, memory, export and custom sections,
 * and the code section's size. It does not validate code; `WebAssembly.validate` does that.
 *
 * Every read is bounds-checked; a malformed binary raises `WasmFormatError` with the byte offset.
 */

/** The 8-byte preamble: `\0asm` and version 1. */
export const WASM_PREAMBLE = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);

/** Bytes in one WebAssembly page. */
export const WASM_PAGE_BYTES = 65_536;

/** Most pages a 32-bit memory can have (4 GiB). */
export const WASM32_MAX_PAGES = 65_536;

/** Section ids of the binary format. */
export const SectionId = {
  custom: 0, type: 1, import: 2, function: 3, table: 4, memory: 5, global: 6, export: 7, start: 8,
  element: 9, code: 10, data: 11, dataCount: 12, tag: 13,
} as const;

/** External kinds as spelled by `WebAssembly.Module.imports()`. */
export type ExternKind = 'function' | 'table' | 'memory' | 'global' | 'tag';
const EXTERN_KINDS: readonly ExternKind[] = ['function', 'table', 'memory', 'global', 'tag'];

/** Limits of a memory type. Sizes are in pages (64-bit memories are read as numbers). */
export interface MemoryLimits {
  initialPages: number;
  maximumPages: number | null;
  shared: boolean;
  memory64: boolean;
  /** log2 of a custom page size (custom-page-sizes proposal), or null for 64 KiB pages. */
  pageSizeLog2: number | null;
}

/** A function type: parameter and result value types as the text format spells them (i32, i64, f32, f64, v128, funcref, externref…). */
export interface FuncType { params: string[]; results: string[] }

export interface WasmImport {
  module: string;
  name: string;
  kind: ExternKind;
  /** Set when kind === 'function' and its type is a plain function type of the type section. */
  type?: FuncType;
  /** Set when kind === 'memory'. */
  memory?: MemoryLimits;
  /** Set when kind === 'global'. */
  mutable?: boolean;
}

export interface WasmExport { name: string; kind: ExternKind; index: number }

export interface WasmSection {
  id: number;
  /** Offset of the section id byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset one past the last content byte. */
  end: number;
  /** Name, for custom sections. */
  name?: string;
}

export interface WasmStructure {
  sections: WasmSection[];
  imports: WasmImport[];
  exports: WasmExport[];
  /** Memories defined by the module itself (not imported). */
  memories: MemoryLimits[];
  hasStartSection: boolean;
  /** The start section's function index (it runs when the module is instantiated), or null. */
  startFunction: number | null;
  /** Size in bytes of the code section's content (0 when absent). */
  codeBytes: number;
}

/** A structural error in the binary (bad LEB, truncated section, unknown kind…). */
export class WasmFormatError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at byte ${offset}`);
    this.name = 'WasmFormatError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The value types a WASI guest can use, by their binary encoding. */
const VALUE_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [0x7f, 'i32'], [0x7e, 'i64'], [0x7d, 'f32'], [0x7c, 'f64'], [0x7b, 'v128'], [0x70, 'funcref'], [0x6f, 'externref'],
]);
/** A plain function type in the type section (GC's rec and sub groups are not read). */
const FUNC_TYPE_FORM = 0x60;

/** The same bytes typed as a BufferSource for the WebAssembly JS API (TS 5.7+ types Uint8Array by its buffer). */
export function asBufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

/** True when `bytes` starts with the WebAssembly magic number (any version). */
export function hasWasmMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x00 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
}

class Reader {
  constructor(readonly bytes: Uint8Array, public pos: number, readonly end: number) {}

  private need(n: number): void {
    if (this.pos + n > this.end) throw new WasmFormatError('unexpected end of data', this.pos);
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.pos++];
  }

  /** Unsigned LEB128 of at most `bits` bits, as a number (exact up to 2^53). */
  uleb(bits = 32): number {
    let result = 0;
    let mul = 1;
    const start = this.pos;
    for (let i = 0; i < Math.ceil(bits / 7); i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new WasmFormatError('LEB128 number too long', start);
  }

  /** Signed LEB128 (s33 heap types, s32/s64 constants), as a number. */
  sleb(bits = 33): number {
    let result = 0;
    let mul = 1;
    const start = this.pos;
    for (let i = 0; i < Math.ceil(bits / 7); i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return (b & 0x40) !== 0 ? result - mul : result;
    }
    throw new WasmFormatError('LEB128 number too long', start);
  }

  name(): string {
    const len = this.uleb();
    this.need(len);
    const start = this.pos;
    this.pos += len;
    try {
      return utf8.decode(this.bytes.subarray(start, start + len));
    } catch {
      throw new WasmFormatError('name is not valid UTF-8', start);
    }
  }

  limits(): MemoryLimits {
    const at = this.pos;
    const flags = this.u8();
    if (flags > 0x0f) throw new WasmFormatError(`unknown limits flags 0x${flags.toString(16)}`, at);
    const memory64 = (flags & 0x04) !== 0;
    const bits = memory64 ? 64 : 32;
    const initialPages = this.uleb(bits);
    const maximumPages = (flags & 0x01) !== 0 ? this.uleb(bits) : null;
    const pageSizeLog2 = (flags & 0x08) !== 0 ? this.uleb() : null;
    return { initialPages, maximumPages, shared: (flags & 0x02) !== 0, memory64, pageSizeLog2 };
  }

  /** Read a value type (number, vector or reference type, with GC heap types) and name it. */
  valType(): string {
    const at = this.pos;
    const b = this.u8();
    if (b === 0x63 || b === 0x64) {
      const heap = this.sleb(33); // (ref null? heaptype)
      return `(ref${b === 0x63 ? ' null' : ''} ${heap})`;
    }
    const name = VALUE_TYPE_NAMES.get(b);
    if (name !== undefined) return name;
    if ((b >= 0x69 && b <= 0x7f) || b === 0x62 || b === 0x61) return `type 0x${b.toString(16)}`;
    throw new WasmFormatError(`unknown value type 0x${b.toString(16)}`, at);
  }

  /** A vector of value types. */
  valTypes(): string[] {
    const count = this.uleb();
    const out: string[] = [];
    for (let i = 0; i < count; i++) out.push(this.valType());
    return out;
  }
}

/** Iterate over the sections of a module; throws WasmFormatError when they do not fit. */
export function readSections(bytes: Uint8Array): WasmSection[] {
  if (!hasWasmMagic(bytes)) throw new WasmFormatError('missing the \\0asm magic number', 0);
  if (bytes.length < 8) throw new WasmFormatError('unexpected end of data', bytes.length);
  const version = bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24);
  if (version !== 1) throw new WasmFormatError(`unsupported binary version ${version} (a component or a newer format?)`, 4);
  const sections: WasmSection[] = [];
  const r = new Reader(bytes, 8, bytes.length);
  while (r.pos < bytes.length) {
    const start = r.pos;
    const id = r.u8();
    const size = r.uleb();
    const contentStart = r.pos;
    const end = contentStart + size;
    if (end > bytes.length) throw new WasmFormatError(`section ${id} runs past the end of the file`, start);
    const section: WasmSection = { id, start, contentStart, end };
    if (id === SectionId.custom) {
      const nr = new Reader(bytes, contentStart, end);
      section.name = nr.name();
      section.contentStart = nr.pos;
    }
    sections.push(section);
    r.pos = end;
  }
  return sections;
}

/** Read the structure of a module: imports, exports, memories. Throws WasmFormatError. */
export function readStructure(bytes: Uint8Array): WasmStructure {
  const sections = readSections(bytes);
  const imports: WasmImport[] = [];
  const exports: WasmExport[] = [];
  const memories: MemoryLimits[] = [];
  let startFunction: number | null = null;
  let codeBytes = 0;
  /** Function types by index; stops at the first entry that is not a plain function type. */
  const types: FuncType[] = [];
  for (const s of sections) {
    const r = new Reader(bytes, s.contentStart, s.end);
    switch (s.id) {
      case SectionId.type: {
        const count = r.uleb();
        for (let i = 0; i < count && r.u8() === FUNC_TYPE_FORM; i++) types.push({ params: r.valTypes(), results: r.valTypes() });
        break;
      }
      case SectionId.import: {
        const count = r.uleb();
        for (let i = 0; i < count; i++) {
          const module = r.name();
          const name = r.name();
          const kindAt = r.pos;
          const kindByte = r.u8();
          const kind = EXTERN_KINDS[kindByte];
          if (kind === undefined) throw new WasmFormatError(`unknown import kind ${kindByte}`, kindAt);
          const imp: WasmImport = { module, name, kind };
          switch (kind) {
            case 'function': {
              const type = types[r.uleb()];
              if (type !== undefined) imp.type = type;
              break;
            }
            case 'table': r.valType(); r.limits(); break;
            case 'memory': imp.memory = r.limits(); break;
            case 'global': r.valType(); imp.mutable = r.u8() === 1; break;
            case 'tag': r.u8(); r.uleb(); break;
          }
          imports.push(imp);
        }
        break;
      }
      case SectionId.memory: {
        const count = r.uleb();
        for (let i = 0; i < count; i++) memories.push(r.limits());
        break;
      }
      case SectionId.export: {
        const count = r.uleb();
        for (let i = 0; i < count; i++) {
          const name = r.name();
          const kindAt = r.pos;
          const kindByte = r.u8();
          const kind = EXTERN_KINDS[kindByte];
          if (kind === undefined) throw new WasmFormatError(`unknown export kind ${kindByte}`, kindAt);
          exports.push({ name, kind, index: r.uleb() });
        }
        break;
      }
      case SectionId.start:
        startFunction = r.uleb();
        break;
      case SectionId.code:
        codeBytes = s.end - s.contentStart;
        break;
      default:
        break;
    }
  }
  return { sections, imports, exports, memories, hasStartSection: startFunction !== null, startFunction, codeBytes };
}

/** The contents of every custom section called `name`, in order. */
export function customSections(bytes: Uint8Array, name: string): Uint8Array[] {
  return readSections(bytes)
    .filter((s) => s.id === SectionId.custom && s.name === name)
    .map((s) => bytes.subarray(s.contentStart, s.end));
}

/** Encode an unsigned LEB128 number. */
export function encodeULeb(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

/** Build a custom section (id 0) with the given name and contents. */
export function encodeCustomSection(name: string, contents: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const payload = [...encodeULeb(nameBytes.length), ...nameBytes];
  const size = payload.length + contents.length;
  const head = [0, ...encodeULeb(size), ...payload];
  const out = new Uint8Array(head.length + contents.length);
  out.set(head, 0);
  out.set(contents, head.length);
  return out;
}
