/**
 * A synthetic guest for pause benchmarks: a memory of a given size and an exported
 * `touch(page)` that writes one byte into a 4 KiB page with a wasm store. Built with binaryen;
 * optionally with the store-instrumentation pass, the dirty map at the end of the memory (where an
 * image's reserved region would hold it).
 */
import { loadBinaryen } from '../../libos-host/image/binaryen-loader.js';
import { instrumentDirtyStores } from '../../libos-host/image/dirty-instrument.js';
import type { DirtyMapLayout } from '../../checkpoint/trackers/instrument-tracker.js';

const WASM_PAGE_BYTES = 65536;

export interface TouchGuest {
  memory: WebAssembly.Memory;
  /** Write one byte in each page of `pages`. */
  touch(pages: Uint32Array): void;
  /** Where the dirty map is (instrumented only). */
  map: DirtyMapLayout;
  /** Pages of memory that belong to the guest (the map lies above them). */
  guestPages: number;
}

/** Build and instantiate the touch guest with `bytes` of guest memory. */
export async function touchGuest(bytes: number, instrumented: boolean): Promise<TouchGuest> {
  const binaryen = await loadBinaryen();
  const guestWasmPages = Math.ceil(bytes / WASM_PAGE_BYTES);
  const mapBytes = (guestWasmPages + 4) * 16;
  const wasmPages = guestWasmPages + Math.ceil(mapBytes / WASM_PAGE_BYTES);
  const mapAddr = guestWasmPages * WASM_PAGE_BYTES;
  const m = binaryen.parseText(String.raw`
    (module
      (memory $mem (export "memory") ${wasmPages} ${wasmPages + 4})
      (func (export "touch") (param $page i32) (local $a i32)
        (local.set $a (i32.add (i32.shl (local.get $page) (i32.const 12)) (i32.and (i32.mul (local.get $page) (i32.const 64)) (i32.const 4095))))
        (i32.store8 (local.get $a) (i32.add (i32.load8_u (local.get $a)) (i32.const 1)))))`);
  try {
    m.setFeatures(binaryen.Features.MutableGlobals | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt);
    if (instrumented) instrumentDirtyStores(binaryen, m, { memoryName: 'mem', mapAddr, mapBytes });
    if (!m.validate()) throw new Error('touch guest does not validate');
    const module = await WebAssembly.compile(m.emitBinary() as Uint8Array<ArrayBuffer>);
    const instance = new WebAssembly.Instance(module, {});
    const memory = instance.exports.memory as WebAssembly.Memory;
    const touch1 = instance.exports.touch as (page: number) => void;
    return {
      memory,
      touch: (pages) => { for (let i = 0; i < pages.length; i++) touch1(pages[i]); },
      map: { dirtyMapAddr: mapAddr, dirtyMapBytes: mapBytes },
      guestPages: guestWasmPages * (WASM_PAGE_BYTES / 4096),
    };
  } finally {
    m.dispose();
  }
}
