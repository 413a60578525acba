/**
 * The binaryen part of image preparation: from a validated, runnable guest module to the
 * prepared image bytes. Synchronous; binaryen's global options are set for the duration of the
 * call and restored afterwards.
 *
 * Pipeline:
 *   read (names kept) → binaryen validation → strip DWARF → rewrite memory.size/grow
 *   → Asyncify on the suspending WASI imports → reserved region (memory limits + data segments)
 *   → export mutable globals → `waterbear.image` section → emit.
 */
import { WaterbearError } from '../errors.js';
import { SUSPENDING_WASI_FUNCTIONS, WASI_MODULE } from '../wasi/wasi-imports.js';
import { captureOutput, type Binaryen } from './binaryen-loader.js';
import { ASYNCIFY_EXPORTS, GLOBAL_EXPORT_PREFIX, IMAGE_SECTION, MEMORY_EXPORT } from './image-names.js';
import { encodeImageMetadata, PREPARATION_VERSION, type ExportedGlobal } from './image-section.js';
import { computeLayout, regionHeadBytes, canaryPattern, type ImageLayout } from './layout.js';
import { instrumentDirtyStores, type DirtyInstrumentStats } from './dirty-instrument.js';
import { rewriteMemorySize } from './memory-size-rewrite.js';
import { addYieldPoints, YIELD_ASYNCIFY_IMPORT, type YieldPointStats } from './yield-points.js';
import { readStructure, WASM32_MAX_PAGES, type WasmStructure } from './wasm-binary.js';

/** binaryen optimize level while running Asyncify: it then cleans up the code it instruments. */
export const ASYNCIFY_OPTIMIZE_LEVEL = 2;

/** Name of the data segments that initialize the reserved region. */
const REGION_HEAD_SEGMENT = 'waterbear.region.head';
const REGION_TAIL_SEGMENT = 'waterbear.region.tail';

export interface TransformParams {
  /** Cap of the guest's own memory, in pages. */
  memoryLimitPages: number;
  /** False only in tests: leave memory.size/memory.grow as they are. */
  rewriteMemorySize: boolean;
  sourceSha256: string;
  binaryenVersion: string;
  /** 'instrument': mark the dirty map on every store (dirty-instrument.ts). Default 'none'. */
  dirtyTracking?: 'instrument' | 'none';
  /** Add yield points on loop back-edges (yield-points.ts). Default false. */
  yieldPoints?: boolean;
}

/** Where preparation spent its time and what it did to the code. Recorded when the image is built. */
export interface PreparationStats {
  /** Milliseconds per phase of the binaryen transformation. */
  phasesMs: { read: number; validate: number; rewriteMemorySize: number; asyncify: number; layout: number; emit: number };
  sourceBytes: number;
  imageBytes: number;
  /** Size of the code section before and after preparation (Asyncify is most of the growth). */
  sourceCodeBytes: number;
  imageCodeBytes: number;
  memorySizeRewritten: number;
  memoryGrowRewritten: number;
  /** What the dirty-page instrumentation did, and its milliseconds (absent when not instrumented). */
  dirtyInstrumentation?: DirtyInstrumentStats & { ms: number };
  /** What the yield-point pass did, and its milliseconds (absent when not added). */
  yieldPoints?: YieldPointStats & { ms: number };
}

export interface TransformResult {
  bytes: Uint8Array;
  layout: ImageLayout;
  mutableGlobals: ExportedGlobal[];
  stats: PreparationStats;
}

/** The asyncify-imports pass argument: every suspending WASI function (and waterbear.yield with yield points), as module.name. */
export function asyncifyImportList(withYieldPoints = false): string {
  const list = SUSPENDING_WASI_FUNCTIONS.map((name) => `${WASI_MODULE}.${name}`);
  if (withYieldPoints) list.push(YIELD_ASYNCIFY_IMPORT);
  return list.join(',');
}

/**
 * Features Node 20's engine accepts. A module without a target_features section is read by
 * binaryen as MVP only; enabling these lets binaryen validate what V8 has already validated.
 */
function engineFeatures(binaryen: Binaryen): number {
  const F = binaryen.Features;
  return F.MutableGlobals | F.NontrappingFPToInt | F.SignExt | F.SIMD128 | F.BulkMemory | F.BulkMemoryOpt |
    F.Multivalue | F.ReferenceTypes | F.TailCall | F.CallIndirectOverlong | F.ExtendedConst;
}

function globalType(binaryen: Binaryen, type: number): ExportedGlobal['type'] | null {
  if (type === binaryen.i32) return 'i32';
  if (type === binaryen.i64) return 'i64';
  if (type === binaryen.f32) return 'f32';
  if (type === binaryen.f64) return 'f64';
  return null;
}

/** Run a binaryen step; its fatal errors become WB_IMAGE_PREPARATION with binaryen's output. */
function step<T>(what: string, fn: () => T): T {
  const { result, error, output } = captureOutput(fn);
  if (error !== undefined) {
    const detail = output.trim() || (error instanceof Error ? error.message : String(error));
    throw new WaterbearError('WB_IMAGE_PREPARATION', `image preparation failed while ${what}: ${detail}. ` +
      'This is a limitation of waterbear or binaryen for this guest; please report it with the guest module', { cause: error });
  }
  return result as T;
}

/**
 * Prepare a guest (already checked by `inspectModule`/`assertRunnable`) for waterbear.
 * Throws WB_INVALID_MODULE when binaryen finds the module invalid, WB_GUEST_MEMORY_LIMIT when its
 * initial memory exceeds the limit, WB_IMAGE_PREPARATION when a binaryen step fails.
 */
export function transformGuest(binaryen: Binaryen, source: Uint8Array, structure: WasmStructure, params: TransformParams): TransformResult {
  const saved = {
    optimizeLevel: binaryen.getOptimizeLevel(),
    shrinkLevel: binaryen.getShrinkLevel(),
    debugInfo: binaryen.getDebugInfo(),
    asyncifyImports: binaryen.getPassArgument('asyncify-imports'),
  };
  let module: binaryenModule | null = null;
  try {
    // Names (function names for traces) are kept only when debug info is on.
    binaryen.setDebugInfo(true);
    binaryen.setOptimizeLevel(ASYNCIFY_OPTIMIZE_LEVEL);
    binaryen.setShrinkLevel(0);
    let t = performance.now();
    const lap = (): number => {
      const now = performance.now();
      const ms = now - t;
      t = now;
      return Math.round(ms * 10) / 10;
    };

    const m = step('reading the module', () => binaryen.readBinary(source));
    module = m;
    const read = lap();

    m.setFeatures(m.getFeatures() | engineFeatures(binaryen));
    const validation = captureOutput(() => m.validate());
    if (validation.error !== undefined || validation.result === 0) {
      throw new WaterbearError('WB_INVALID_MODULE', `invalid WebAssembly module (binaryen validation): ${validation.output.trim().slice(0, 2000) || 'no details'}. ` +
        'Rebuild the guest for wasm32-wasip1', { details: { validation: validation.output } });
    }
    if (structure.sections.some((s) => s.name?.startsWith('.debug_') === true)) {
      // DWARF cannot be kept exact through Asyncify; function names (name section) are kept.
      step('stripping DWARF debug info', () => m.runPasses(['strip-dwarf']));
    }
    const validate = lap();

    const memoryExport = m.getExport(MEMORY_EXPORT);
    const memoryName = binaryen.getExportInfo(memoryExport).value;
    const memory = m.getMemoryInfo(memoryName);
    const originalInitialPages = memory.initial;
    const declaredMax = memory.max ?? WASM32_MAX_PAGES;
    if (originalInitialPages > params.memoryLimitPages) {
      throw new WaterbearError('WB_GUEST_MEMORY_LIMIT',
        `guest needs ${originalInitialPages} pages (${(originalInitialPages * 64) / 1024} MiB) of memory at start, more than the memory limit of ` +
        `${params.memoryLimitPages} pages (${(params.memoryLimitPages * 64) / 1024} MiB): raise the memory limit`,
        { details: { initialPages: originalInitialPages, limitPages: params.memoryLimitPages } });
    }

    let memorySizeRewritten = 0;
    let memoryGrowRewritten = 0;
    if (params.rewriteMemorySize) {
      const r = step('rewriting memory.size', () => rewriteMemorySize(binaryen, m, memoryName, originalInitialPages));
      memorySizeRewritten = r.memorySizeRewritten;
      memoryGrowRewritten = r.memoryGrowRewritten;
    }
    const rewrite = lap();

    let yieldPoints: PreparationStats['yieldPoints'];
    if (params.yieldPoints === true) {
      const r = step('adding yield points', () => addYieldPoints(binaryen, m));
      yieldPoints = { ...r, ms: lap() };
    }

    binaryen.setPassArgument('asyncify-imports', asyncifyImportList(params.yieldPoints === true));
    step('running Asyncify', () => m.runPasses(['asyncify']));
    const asyncify = lap();

    // Reserved region. The guest keeps at most min(declared max, limit) pages of its own
    // (lowered if needed so that guest and region fit in 4 GiB).
    const layout = computeLayout(originalInitialPages, Math.min(declaredMax, params.memoryLimitPages));
    setMemoryKeepingSegments(binaryen, m, memoryName, layout);

    // After Asyncify, so that its stores (the unwound stack) mark the map too.
    let dirtyInstrumentation: PreparationStats['dirtyInstrumentation'];
    if (params.dirtyTracking === 'instrument') {
      const t0 = performance.now();
      const r = step('instrumenting stores for dirty-page tracking', () =>
        instrumentDirtyStores(binaryen, m, { memoryName, mapAddr: layout.dirtyMapAddr, mapBytes: layout.dirtyMapBytes }));
      dirtyInstrumentation = { ...r, ms: Math.round((performance.now() - t0) * 10) / 10 };
    }

    const mutableGlobals = exportMutableGlobals(binaryen, m);
    for (const name of ASYNCIFY_EXPORTS) {
      if (m.getExport(name) === 0) throw new WaterbearError('WB_IMAGE_PREPARATION', `Asyncify did not add the ${name} export`);
    }
    m.addCustomSection(IMAGE_SECTION, encodeImageMetadata({
      format: 'waterbear.image',
      preparationVersion: PREPARATION_VERSION,
      binaryenVersion: params.binaryenVersion,
      sourceSha256: params.sourceSha256,
      layout,
      mutableGlobals,
      memorySizeRewritten: params.rewriteMemorySize,
    }));
    const layoutMs = lap();

    const bytes = step('emitting the image', () => m.emitBinary());
    const emit = lap();
    const imageStructure = readStructure(bytes);
    const memoryExports = imageStructure.exports.filter((e) => e.name === MEMORY_EXPORT);
    if (memoryExports.length !== 1 || memoryExports[0].kind !== 'memory') {
      throw new WaterbearError('WB_IMAGE_PREPARATION', `prepared image exports "${MEMORY_EXPORT}" ${memoryExports.length} times: expected exactly once`);
    }
    return {
      bytes,
      layout,
      mutableGlobals,
      stats: {
        phasesMs: { read, validate, rewriteMemorySize: rewrite, asyncify, layout: layoutMs, emit },
        sourceBytes: source.length,
        imageBytes: bytes.length,
        sourceCodeBytes: structure.codeBytes,
        imageCodeBytes: imageStructure.codeBytes,
        memorySizeRewritten,
        memoryGrowRewritten,
        ...(dirtyInstrumentation !== undefined ? { dirtyInstrumentation } : {}),
        ...(yieldPoints !== undefined ? { yieldPoints } : {}),
      },
    };
  } finally {
    module?.dispose();
    binaryen.setDebugInfo(saved.debugInfo);
    binaryen.setOptimizeLevel(saved.optimizeLevel);
    binaryen.setShrinkLevel(saved.shrinkLevel);
    binaryen.setPassArgument('asyncify-imports', saved.asyncifyImports);
  }
}

type binaryenModule = InstanceType<Binaryen['Module']>;

interface SegmentCopy { name: string; offset: number | null; data: Uint8Array; passive: boolean }

function readSegments(binaryen: Binaryen, m: binaryenModule): SegmentCopy[] {
  const segments: SegmentCopy[] = [];
  const getInfo = (m as unknown as { getDataSegmentInfo(ref: number): { name: string; offset: number | null; data: ArrayBuffer; passive: boolean } }).getDataSegmentInfo;
  const count = (m as unknown as { getNumDataSegments(): number }).getNumDataSegments();
  for (let i = 0; i < count; i++) {
    const info = getInfo.call(m, m.getDataSegmentByIndex(i));
    segments.push({ name: info.name, offset: info.passive ? null : info.offset, data: new Uint8Array(info.data), passive: info.passive });
  }
  void binaryen;
  return segments;
}

/**
 * Raise the memory's initial size and maximum by the region, and add the data segments that
 * initialize the region. binaryen.js `setMemory` replaces the memory and ALL data segments, and
 * adds an export when given a name: so we pass every existing segment back (same names, offsets,
 * bytes, order) and no export name (the existing `memory` export still names the memory).
 */
function setMemoryKeepingSegments(binaryen: Binaryen, m: binaryenModule, memoryName: string, layout: ImageLayout): void {
  const before = readSegments(binaryen, m);
  const head = regionHeadBytes(layout);
  const added: SegmentCopy[] = [
    { name: REGION_HEAD_SEGMENT, offset: layout.canaryAddr, data: head, passive: false },
    { name: REGION_TAIL_SEGMENT, offset: layout.tailCanaryAddr, data: canaryPattern(), passive: false },
  ];
  const all = [...before, ...added];
  const initial = layout.originalInitialPages + layout.reservedPages;
  const maximum = layout.guestMaxPages + layout.reservedPages;
  step('resizing the memory', () => m.setMemory(initial, maximum, null, all.map((s) => ({
    name: s.name,
    offset: s.passive ? 0 : m.i32.const(s.offset ?? 0),
    data: s.data,
    passive: s.passive,
  })) as never, false, false, memoryName));
  // Invariant: every original segment is back, byte for byte, in the same order.
  const after = readSegments(binaryen, m);
  const same = after.length === all.length && all.every((s, i) => {
    const a = after[i];
    return a.name === s.name && a.passive === s.passive && a.offset === s.offset && a.data.length === s.data.length &&
      a.data.every((byte, j) => byte === s.data[j]);
  });
  if (!same) throw new WaterbearError('WB_IMAGE_PREPARATION', 'data segments changed while resizing the memory (binaryen setMemory)');
  const info = m.getMemoryInfo(memoryName);
  if (info.initial !== initial || info.max !== maximum) {
    throw new WaterbearError('WB_IMAGE_PREPARATION', `memory limits are ${info.initial}/${info.max} pages after resizing: expected ${initial}/${maximum}`);
  }
}

/**
 * Export every mutable, non-imported global as `wb_global_<index>`, in index order. This
 * includes the guest's own (`__stack_pointer`…), Asyncify's (`__asyncify_state`,
 * `__asyncify_data`) and preparation's (`wb_grown`): all are execution state that a checkpoint
 * must capture and a restore must set.
 */
function exportMutableGlobals(binaryen: Binaryen, m: binaryenModule): ExportedGlobal[] {
  const out: ExportedGlobal[] = [];
  for (let i = 0; i < m.getNumGlobals(); i++) {
    const info = binaryen.getGlobalInfo(m.getGlobalByIndex(i));
    if ((info.module !== null && info.module !== '') || !info.mutable) continue;
    const type = globalType(binaryen, info.type);
    if (type === null) {
      throw new WaterbearError('WB_IMAGE_PREPARATION', `mutable global ${info.name} has a type waterbear cannot capture (only i32, i64, f32, f64)`);
    }
    const exportName = `${GLOBAL_EXPORT_PREFIX}${i}`;
    m.addGlobalExport(info.name, exportName);
    out.push({ exportName, type, name: info.name });
  }
  return out;
}
