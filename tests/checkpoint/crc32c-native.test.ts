import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { crc32c, crc32cImplementation, crc32cJs, verifyPageChecksums, type Crc32cImplementation } from '../../checkpoint/format/crc32c.js';
import { UFFD_ADDON_FILE } from '../../checkpoint/trackers/uffd-tracker.js';
import { seededRandom, testSeed } from './helpers/checkpointing.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** The native addon is built by `npm install`; in CI (WB_REQUIRE_TOOLS=1) it must be. */
const native = crc32cImplementation.native || process.env.WB_REQUIRE_TOOLS === '1';
if (!native) console.log(`skipping the native CRC-32C checks: ${crc32cImplementation.reason}`);

interface Addon { crc32c(b: Uint8Array, p: number): number; software(b: Uint8Array, p: number): number }

/** How crc32c.ts decides in a fresh process with `env`. */
function implementationWith(env: Record<string, string>): Crc32cImplementation {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    "import { crc32cImplementation } from './checkpoint/format/crc32c.ts'; console.log(JSON.stringify(crc32cImplementation));"],
  { cwd: REPO, env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Crc32cImplementation;
}

(native ? test : test.skip)('the native CRC-32C (instruction and C tables) equals the TypeScript one: seeded lengths, offsets, continuations', (t) => {
  t.true(crc32cImplementation.native, crc32cImplementation.reason);
  const addon = createRequire(import.meta.url)(crc32cImplementation.addonPath!) as Addon;
  const seed = testSeed('native CRC-32C');
  const rnd = seededRandom(seed);
  const data = new Uint8Array(20_000).map(() => Math.floor(rnd() * 256));
  for (let i = 0; i < 400; i++) {
    const start = Math.floor(rnd() * 64);
    const length = i < 80 ? i : Math.floor(rnd() * (data.length - start));
    const bytes = data.subarray(start, start + length);
    const previous = i % 3 === 0 ? 0 : Math.floor(rnd() * 2 ** 32);
    const want = crc32cJs(bytes, previous);
    const where = `seed ${seed}, case ${i}: offset ${start}, ${length} bytes, previous ${previous}`;
    t.is(crc32c(bytes, previous), want, where);
    t.is(addon.crc32c(bytes, previous), want, `instruction: ${where}`);
    t.is(addon.software(bytes, previous), want, `C tables: ${where}`);
  }
  t.throws(() => addon.crc32c(new Uint16Array(4) as unknown as Uint8Array, 0), { instanceOf: TypeError, message: /Uint8Array/ });
});

(native ? test : test.skip)('WATERBEAR_CRC32C=js forces TypeScript; an addon that is not the CRC one falls back with the reason', (t) => {
  t.true(implementationWith({}).native);
  const forced = implementationWith({ WATERBEAR_CRC32C: 'js' });
  t.false(forced.native);
  t.regex(forced.reason, /WATERBEAR_CRC32C=js/);
  // The uffd addon loads but has no crc32c function: refused, not used.
  const wrong = implementationWith({ WATERBEAR_CRC32C_ADDON: join(REPO, 'native/uffd/build/Release', UFFD_ADDON_FILE) });
  t.false(wrong.native);
  t.regex(wrong.reason, /native addon does not load|another checksum/);
});

test('verifyPageChecksums finds the first page whose checksum differs, or that lies outside the memory (native and TypeScript alike)', (t) => {
  const seed = testSeed('verify pages');
  const rnd = seededRandom(seed);
  const PAGE = 4096;
  const memory = new Uint8Array(600 * PAGE).map(() => Math.floor(rnd() * 256));
  const count = 500;
  const indices = new Uint32Array(count).map(() => Math.floor(rnd() * 600));
  const expected = indices.map((p) => crc32cJs(memory.subarray(p * PAGE, (p + 1) * PAGE)));
  const check = (): number => verifyPageChecksums(memory, indices, expected, count, PAGE);
  t.is(check(), -1, `seed ${seed}: all pages match (${crc32cImplementation.native ? 'native' : 'TypeScript'})`);
  // One byte flipped in the page at position 321: the first position listing that page is reported.
  const target = indices[321];
  const first = indices.indexOf(target);
  memory[target * PAGE + 77] ^= 0x10;
  t.is(check(), first, `seed ${seed}: the damaged page`);
  memory[target * PAGE + 77] ^= 0x10;
  t.is(check(), -1);
  indices[400] = 600; // one past the end
  t.is(check(), 400, 'a page outside the memory');
  t.is(verifyPageChecksums(memory, indices, expected, 400, PAGE), -1, 'only the first `count` positions are checked');
});
