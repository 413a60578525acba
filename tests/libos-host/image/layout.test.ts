import test from 'ava';
import {
  ASYNCIFY_STACK_BYTES, assertCanariesIntact, CANARY_BYTES, computeLayout, DIRTY_PAGE_BYTES, findDamagedCanary,
  reservedEndByte, writeCanaries, type ImageLayout,
} from '../../../libos-host/image/layout.js';
import { WASM_PAGE_BYTES } from '../../../libos-host/image/wasm-binary.js';

/** The parts of the region as [start, end) byte ranges. */
function parts(l: ImageLayout): [string, number, number][] {
  return [
    ['head canary', l.canaryAddr, l.canaryAddr + l.canaryBytes],
    ['asyncify header', l.asyncifyDataAddr, l.asyncifyDataAddr + 8],
    ['dirty map', l.dirtyMapAddr, l.dirtyMapAddr + l.dirtyMapBytes],
    ['asyncify stack', l.asyncifyStackStart, l.asyncifyStackEnd],
    ['tail canary', l.tailCanaryAddr, l.tailCanaryAddr + l.canaryBytes],
  ];
}

function checkLayout(t: import('ava').ExecutionContext, l: ImageLayout, initial: number, requestedMax: number): void {
  const label = `initial ${initial} pages, guest max ${requestedMax} pages`;
  const start = initial * WASM_PAGE_BYTES;
  const end = start + l.reservedPages * WASM_PAGE_BYTES;
  t.is(l.reservedStartByte, start, label);
  t.is(reservedEndByte(l), end, label);
  const ps = parts(l);
  for (const [name, a, b] of ps) {
    t.true(a >= start && b <= end && a < b, `${label}: ${name} [${a}, ${b}) inside the region [${start}, ${end})`);
  }
  const sorted = [...ps].sort((x, y) => x[1] - y[1]);
  for (let i = 1; i < sorted.length; i++) {
    t.true(sorted[i - 1][2] <= sorted[i][1], `${label}: ${sorted[i - 1][0]} does not overlap ${sorted[i][0]}`);
  }
  t.is(l.canaryAddr, start, `${label}: head canary at the region's first byte`);
  t.is(l.tailCanaryAddr + CANARY_BYTES, end, `${label}: tail canary ends at the region's last byte`);
  t.true(l.asyncifyStackEnd - l.asyncifyStackStart >= ASYNCIFY_STACK_BYTES, `${label}: Asyncify stack of at least ${ASYNCIFY_STACK_BYTES} bytes`);
  t.is(l.asyncifyStackStart % 16, 0);
  t.is(l.dirtyPageBytes, DIRTY_PAGE_BYTES);
  t.is(l.dirtyMapBytes, ((l.guestMaxPages + l.reservedPages) * WASM_PAGE_BYTES) / DIRTY_PAGE_BYTES, `${label}: one byte per 4 KiB page of the maximum memory`);
  t.true(l.guestMaxPages <= requestedMax && l.guestMaxPages + l.reservedPages <= 65_536, label);
  // Minimal: one page fewer would not hold the dirty map, the header and a 64 KiB stack.
  const needed = 2 * CANARY_BYTES + 16 + (l.guestMaxPages + l.reservedPages - 1) * 16 + ASYNCIFY_STACK_BYTES;
  t.true(needed > (l.reservedPages - 1) * WASM_PAGE_BYTES, `${label}: ${l.reservedPages} pages is the fewest that fit`);
}

test('the layout lies inside [originalInitial, originalInitial + reserved) pages and its parts do not overlap', (t) => {
  for (const initial of [0, 1, 2, 17, 256, 4000]) {
    for (const max of [4096, initial, initial + 1, 16_384, 32_768, 65_536]) {
      if (max < initial) continue;
      checkLayout(t, computeLayout(initial, max), initial, max);
    }
  }
});

test('default numbers: 256 MiB guest limit takes 3 reserved pages', (t) => {
  const l = computeLayout(2, 4096);
  t.is(l.reservedPages, 3);
  t.is(l.dirtyMapBytes, (4096 + 3) * 16);
  t.is(l.guestMaxPages, 4096);
});

test('a 4 GiB guest limit is lowered so guest and region fit in 4 GiB', (t) => {
  const l = computeLayout(2, 65_536);
  t.is(l.guestMaxPages + l.reservedPages, 65_536);
  t.is(l.dirtyMapBytes, 65_536 * 16);
});

test('canaries: intact after writing, a changed byte is found and reported as WB_REGION_CORRUPTED', (t) => {
  const l = computeLayout(1, 64);
  const memory = new Uint8Array((1 + l.reservedPages) * WASM_PAGE_BYTES);
  t.not(findDamagedCanary(memory, l), null, 'zeroed memory has no canaries');
  writeCanaries(memory, l);
  t.is(findDamagedCanary(memory, l), null);
  t.notThrows(() => assertCanariesIntact(memory, l));
  memory[l.tailCanaryAddr + 5] ^= 1;
  t.is(findDamagedCanary(memory, l), l.tailCanaryAddr + 5);
  t.throws(() => assertCanariesIntact(memory, l), { code: 'WB_REGION_CORRUPTED' } as never);
});
