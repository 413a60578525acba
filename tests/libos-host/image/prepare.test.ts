import test from 'ava';
import { ASYNCIFY_EXPORTS, IMAGE_SECTION } from '../../../libos-host/image/image-names.js';
import { formatReport, inspectModule } from '../../../libos-host/image/inspect.js';
import { findDamagedCanary } from '../../../libos-host/image/layout.js';
import { prepareImage, readImageMetadata, type PreparedImage } from '../../../libos-host/image/prepare.js';
import { WASM_PAGE_BYTES } from '../../../libos-host/image/wasm-binary.js';
import { compileC, miniWasi, ProcExit, runGuest, stubImports, wat } from './helpers.js';

const HELLO_C = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
const char rodata_marker[] = "waterbear-rodata-marker-7f3a9c";
char data_marker[40] = "waterbear-data-marker-5521";
int main(void) {
  char *p = malloc(64);
  strcpy(p, rodata_marker);
  printf("%s|%s|%zu\n", p, data_marker, strlen(p));
  fflush(stdout);
  printf("second line\n");
  free(p);
  return 0;
}
`;

let hello: Promise<{ source: Uint8Array; image: PreparedImage }> | null = null;
function helloImage(): Promise<{ source: Uint8Array; image: PreparedImage }> {
  hello ??= (async () => {
    const source = await compileC(HELLO_C);
    return { source, image: await prepareImage(source, { cacheDir: null }) };
  })();
  return hello;
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

test('a valid C guest is inspected as runnable', async (t) => {
  const { source } = await helloImage();
  const report = inspectModule(source);
  t.true(report.runnable, formatReport(report));
  t.true(report.hasStart);
  t.deepEqual(report.problems, []);
  t.true(report.imports.every((i) => i.supported && i.module === 'wasi_snapshot_preview1'));
  t.false(report.memory?.imported);
  t.regex(formatReport(report), /runnable: yes/);
});

test('a valid guest prepares and instantiates with stub imports', async (t) => {
  const { image } = await helloImage();
  t.false(image.fromCache);
  t.regex(image.sourceSha256, /^[0-9a-f]{64}$/);
  t.regex(image.imageSha256, /^[0-9a-f]{64}$/);
  const instance = new WebAssembly.Instance(image.module, stubImports(image.module));
  const memory = instance.exports.memory as WebAssembly.Memory;
  t.true(memory instanceof WebAssembly.Memory);
  t.is(memory.buffer.byteLength, (image.layout.originalInitialPages + image.layout.reservedPages) * WASM_PAGE_BYTES);
});

test('the prepared image exports the asyncify functions, _start, and memory exactly once', async (t) => {
  const { image } = await helloImage();
  const exports = WebAssembly.Module.exports(image.module);
  for (const name of [...ASYNCIFY_EXPORTS, '_start']) {
    t.deepEqual(exports.filter((e) => e.name === name).map((e) => e.kind), ['function'], name);
  }
  t.deepEqual(exports.filter((e) => e.name === 'memory').map((e) => e.kind), ['memory']);
});

test('data segments are preserved: .rodata and .data are at the same addresses as in the original', async (t) => {
  const { source, image } = await helloImage();
  const original = new WebAssembly.Module(source as Uint8Array<ArrayBuffer>);
  const origMemory = new Uint8Array((new WebAssembly.Instance(original, stubImports(original)).exports.memory as WebAssembly.Memory).buffer);
  const prepMemory = new Uint8Array((new WebAssembly.Instance(image.module, stubImports(image.module)).exports.memory as WebAssembly.Memory).buffer);
  const rodata = indexOfBytes(origMemory, new TextEncoder().encode('waterbear-rodata-marker-7f3a9c\0'));
  const data = indexOfBytes(origMemory, new TextEncoder().encode('waterbear-data-marker-5521\0'));
  t.true(rodata > 0 && data > 0);
  t.is(indexOfBytes(prepMemory, new TextEncoder().encode('waterbear-rodata-marker-7f3a9c\0')), rodata);
  t.is(indexOfBytes(prepMemory, new TextEncoder().encode('waterbear-data-marker-5521\0')), data);
  // Stronger: the guest's whole original memory is identical byte for byte.
  t.deepEqual(prepMemory.subarray(0, origMemory.length), origMemory);
});

test('every mutable global is exported as wb_global_<index>, including Asyncify and wb_grown', async (t) => {
  const { image } = await helloImage();
  const names = image.mutableGlobals.map((g) => g.name);
  t.true(names.includes('__stack_pointer'));
  t.true(names.includes('__asyncify_state'));
  t.true(names.includes('__asyncify_data'));
  t.true(names.includes('wb_grown'));
  const instance = new WebAssembly.Instance(image.module, stubImports(image.module));
  const indices = image.mutableGlobals.map((g) => Number(g.exportName.replace('wb_global_', '')));
  t.deepEqual(indices, [...indices].sort((a, b) => a - b), 'stable order: by global index');
  for (const g of image.mutableGlobals) {
    t.regex(g.exportName, /^wb_global_\d+$/);
    const global = instance.exports[g.exportName];
    t.true(global instanceof WebAssembly.Global, g.exportName);
    t.is(typeof (global as WebAssembly.Global).value, g.type === 'i64' ? 'bigint' : 'number');
    (global as WebAssembly.Global).value = (global as WebAssembly.Global).value; // mutable: writable
  }
  const sp = instance.exports[image.mutableGlobals.find((g) => g.name === '__stack_pointer')!.exportName] as WebAssembly.Global;
  t.true((sp.value as number) > 0 && (sp.value as number) <= image.layout.reservedStartByte, 'the guest stack lies below the region');
});

test('the image describes itself in a waterbear.image section', async (t) => {
  const { image } = await helloImage();
  t.is(WebAssembly.Module.customSections(image.module, IMAGE_SECTION).length, 1);
  const meta = readImageMetadata(image.module);
  t.deepEqual(meta?.layout, image.layout);
  t.deepEqual(meta?.mutableGlobals, image.mutableGlobals);
  t.is(meta?.sourceSha256, image.sourceSha256);
  t.true(meta?.memorySizeRewritten);
  t.deepEqual(readImageMetadata(image.bytes), meta);
});

test('a fresh instance has intact canaries and the Asyncify header pointing at its stack', async (t) => {
  const { image } = await helloImage();
  const instance = new WebAssembly.Instance(image.module, stubImports(image.module));
  const buffer = (instance.exports.memory as WebAssembly.Memory).buffer;
  t.is(findDamagedCanary(new Uint8Array(buffer), image.layout), null);
  const dv = new DataView(buffer);
  t.is(dv.getUint32(image.layout.asyncifyDataAddr, true), image.layout.asyncifyStackStart);
  t.is(dv.getUint32(image.layout.asyncifyDataAddr + 4, true), image.layout.asyncifyStackEnd);
});

test('the prepared guest runs like the original', async (t) => {
  const { source, image } = await helloImage();
  const original = runGuest(new WebAssembly.Module(source as Uint8Array<ArrayBuffer>));
  const prepared = runGuest(image.module);
  t.is(original.code, 0);
  t.is(prepared.code, 0);
  t.is(prepared.stdout, 'waterbear-rodata-marker-7f3a9c|waterbear-data-marker-5521|30\nsecond line\n');
  t.is(prepared.stdout, original.stdout);
  t.is(findDamagedCanary(new Uint8Array((prepared.instance.exports.memory as WebAssembly.Memory).buffer), image.layout), null);
});

test('the guest can be unwound in fd_write and rewound using the layout\'s Asyncify data', async (t) => {
  const { image } = await helloImage();
  const NORMAL = 0, UNWINDING = 1, REWINDING = 2;
  let exports!: Record<string, (...args: number[]) => number>;
  let suspended = 0;
  const shim = miniWasi(image.module, (name, fn) => {
    if (name !== 'fd_write') return fn;
    return (...args) => {
      const state = exports.asyncify_get_state();
      if (state === REWINDING) {
        exports.asyncify_stop_rewind();
        return fn(...args); // resumed: do the write now
      }
      t.is(state, NORMAL);
      suspended++;
      exports.asyncify_start_unwind(image.layout.asyncifyDataAddr);
      return 0; // ignored while unwinding
    };
  });
  const instance = new WebAssembly.Instance(image.module, shim.imports);
  exports = instance.exports as unknown as Record<string, (...args: number[]) => number>;
  const memory = instance.exports.memory as WebAssembly.Memory;
  shim.setMemory(memory);
  const dv = new DataView(memory.buffer);
  const { asyncifyDataAddr, asyncifyStackStart, asyncifyStackEnd } = image.layout;
  let rounds = 0;
  try {
    exports._start();
    while (exports.asyncify_get_state() === UNWINDING) {
      exports.asyncify_stop_unwind();
      const pos = dv.getUint32(asyncifyDataAddr, true);
      t.true(pos > asyncifyStackStart && pos <= asyncifyStackEnd, 'the saved stack lies in the Asyncify stack');
      exports.asyncify_start_rewind(asyncifyDataAddr);
      exports._start();
      rounds++;
    }
  } catch (err) {
    if (!(err instanceof ProcExit)) throw err;
  }
  t.is(exports.asyncify_get_state(), NORMAL);
  t.is(dv.getUint32(asyncifyDataAddr, true), asyncifyStackStart, 'rewinding consumed the saved stack');
  t.is(suspended, 2);
  t.is(rounds, 2);
  t.is(shim.stdout(), 'waterbear-rodata-marker-7f3a9c|waterbear-data-marker-5521|30\nsecond line\n');
  t.is(findDamagedCanary(new Uint8Array(memory.buffer), image.layout), null);
});

test('function names survive preparation, so a trap names the guest function', async (t) => {
  const bytes = await wat(`(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func $guest_function_that_traps (param i32) (result i32)
      (drop (call $fd_write (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
      (if (local.get 0) (then (unreachable)))
      (i32.const 1))
    (func (export "_start") (drop (call $guest_function_that_traps (i32.const 1)))))`);
  const image = await prepareImage(bytes, { cacheDir: null });
  const instance = new WebAssembly.Instance(image.module, stubImports(image.module));
  const err = t.throws(() => (instance.exports._start as () => void)(), { instanceOf: WebAssembly.RuntimeError });
  t.regex(err?.stack ?? '', /guest_function_that_traps/);
});
