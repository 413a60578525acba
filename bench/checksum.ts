/**
 * CRC-32C as the checkpoint code computes it (`crc32c`: the native addon when built) against the
 * TypeScript version (`crc32cJs`, the baseline) in the same run, on a 4 KiB page (every dirty page
 * of every epoch, on the primary and on each backup) and on 1 MiB (a pre-copy message), plus
 * zlib's CRC-32 (the wire frames) for reference. Median of 5 timed passes after one not counted.
 *
 *   npm run bench:checksum [-- --out bench/results/checksum.txt]
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { crc32c, crc32cImplementation, crc32cJs, type CrcFunction } from '../checkpoint/format/crc32c.js';
import { crc32 } from '../replica/wire/crc32.js';
import { benchArgs, OUT_OPTION } from './lib/args.js';
import { median } from './lib/stats.js';

const PASSES = 5;
const CASES: Array<{ name: string; bytes: number; calls: number }> = [
  { name: '4 KiB page', bytes: 4096, calls: 50_000 },
  { name: '1 MiB', bytes: 1024 * 1024, calls: 200 },
];

/** Microseconds per call of `f` on `data`, median of PASSES passes (one more first, not counted). */
function usPerCall(f: CrcFunction, data: Uint8Array, calls: number): number {
  const passes: number[] = [];
  let sink = 0;
  for (let pass = 0; pass <= PASSES; pass++) {
    const start = performance.now();
    for (let i = 0; i < calls; i++) sink ^= f(data, i);
    if (pass > 0) passes.push(((performance.now() - start) * 1000) / calls);
  }
  if (sink === 0.5) console.log(sink); // keeps the loop from being optimised away
  return median(passes);
}

const values = benchArgs('npm run bench:checksum --', 'CRC-32C per 4 KiB page and per MiB: the native addon against the TypeScript fallback.', { out: OUT_OPTION });
const lines: string[] = [];
const say = (s: string): void => { lines.push(s); console.log(s); };
say(`# bench:checksum  ${new Date().toISOString()}`);
say(`# command: npm run bench:checksum${values.out !== undefined ? ` -- --out ${values.out}` : ''}`);
say(`# machine: ${cpus().length} cores, node ${process.version}; crc32c = ${crc32cImplementation.reason}`);
say(`# µs per call, median of ${PASSES} passes; baseline = crc32cJs (TypeScript slicing-by-8)`);
say('');
say(`${'input'.padEnd(12)} ${'crc32cJs µs'.padStart(12)} ${'crc32c µs'.padStart(10)} ${'x faster'.padStart(9)} ${'crc32c GB/s'.padStart(12)} ${'zlib CRC-32 µs'.padStart(15)}`);
for (const c of CASES) {
  const data = new Uint8Array(c.bytes).map((_, i) => (i * 131 + 7) & 0xff);
  const js = usPerCall(crc32cJs, data, c.calls);
  const used = usPerCall(crc32c, data, c.calls);
  const zlib = usPerCall(crc32, data, c.calls);
  say(`${c.name.padEnd(12)} ${js.toFixed(3).padStart(12)} ${used.toFixed(3).padStart(10)} ${`${(js / used).toFixed(2)}x`.padStart(9)} ${(c.bytes / used / 1000).toFixed(2).padStart(12)} ${zlib.toFixed(3).padStart(15)}`);
}
if (values.out !== undefined) writeFileSync(values.out, lines.join('\n') + '\n');
