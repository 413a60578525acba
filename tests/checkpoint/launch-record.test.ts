/**
 * A checkpoint directory's launch.json and guest.wasm are checked before anything uses them: a
 * damaged record (null, a missing field, a wrongly typed value) or a missing guest is a
 * WB_CHECKPOINT_CORRUPT naming what is wrong, for `restore` and `checkpoint inspect` alike,
 * never a TypeError.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LAUNCH_RECORD_VERSION, parseLaunchRecord, readCheckpointDir, type LaunchRecord } from '../../checkpoint/checkpoint-dir.js';
import { runCli } from '../../cli/main.js';
import { isWaterbearError } from '../../libos-host/errors.js';
import { guestBytes } from '../helpers/lvm.js';

const GUEST = guestBytes('test/hello');

function validRecord(): LaunchRecord {
  return {
    version: LAUNCH_RECORD_VERSION, programName: 'hello.wasm', guestSha256: createHash('sha256').update(GUEST).digest('hex'),
    memoryLimitBytes: 256 * 1024 * 1024, imageChoices: { dirtyTracking: 'none', yieldPoints: true }, tracker: 'shadow',
    extensionFlags: { trace: null, faults: [], extensions: [] }, checkpointIntervalMs: 50, createdAt: '2026-01-01T00:00:00.000Z',
  };
}

/** A checkpoint directory holding `launch` as launch.json (and the guest unless `guest: false`). */
function checkpointDir(t: import('ava').ExecutionContext, launch: unknown, o: { guest?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-launch-record-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'launch.json'), JSON.stringify(launch));
  if (o.guest !== false) writeFileSync(join(dir, 'guest.wasm'), GUEST);
  return dir;
}

async function cli(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const code = await runCli(args, { out: () => {}, err: (s) => { err += s; } });
  return { code, err };
}

test('a valid launch record reads back as it was written', (t) => {
  const dir = checkpointDir(t, validRecord());
  const { record, guest } = readCheckpointDir(dir);
  t.deepEqual(record, validRecord());
  t.deepEqual(guest, GUEST);
});

test('every field of a launch record is checked, and the error names it', (t) => {
  const cases: Array<[string, (r: Record<string, unknown>) => unknown]> = [
    ['the file', () => null],
    ['the file', () => [1, 2]],
    ['version', (r) => { delete r.version; return r; }],
    ['programName', (r) => ({ ...r, programName: 7 })],
    ['guestSha256', (r) => ({ ...r, guestSha256: 'abc' })],
    ['memoryLimitBytes', (r) => ({ ...r, memoryLimitBytes: 'big' })],
    ['memoryLimitBytes', (r) => ({ ...r, memoryLimitBytes: 0 })],
    ['imageChoices', (r) => { delete r.imageChoices; return r; }],
    ['imageChoices.dirtyTracking', (r) => ({ ...r, imageChoices: { dirtyTracking: 'all', yieldPoints: true } })],
    ['imageChoices.yieldPoints', (r) => ({ ...r, imageChoices: { dirtyTracking: 'none', yieldPoints: 'yes' } })],
    ['tracker', (r) => ({ ...r, tracker: 'magic' })],
    ['extensionFlags', (r) => ({ ...r, extensionFlags: null })],
    ['extensionFlags.trace', (r) => ({ ...r, extensionFlags: { trace: 3, faults: [], extensions: [] } })],
    ['extensionFlags.faults', (r) => ({ ...r, extensionFlags: { trace: null, faults: 'call=read', extensions: [] } })],
    ['extensionFlags.extensions', (r) => ({ ...r, extensionFlags: { trace: null, faults: [], extensions: [1] } })],
    ['checkpointIntervalMs', (r) => ({ ...r, checkpointIntervalMs: -3 })],
    ['createdAt', (r) => { delete r.createdAt; return r; }],
  ];
  for (const [field, damage] of cases) {
    const value = damage({ ...validRecord() } as unknown as Record<string, unknown>);
    const err = t.throws(() => parseLaunchRecord(value, 'DIR/launch.json'), undefined, field);
    t.true(isWaterbearError(err, 'WB_CHECKPOINT_CORRUPT'), `${field}: ${String(err)}`);
    t.true(err?.message.startsWith(`DIR/launch.json: ${field} must be`), err?.message);
  }
  t.true(isWaterbearError(t.throws(() => parseLaunchRecord({ ...validRecord(), version: 2 }, 'f')), 'WB_CHECKPOINT_VERSION'));
});

test('restore and checkpoint inspect report a damaged launch.json or a missing guest.wasm as WB_CHECKPOINT_CORRUPT', async (t) => {
  const { imageChoices: _dropped, ...noChoices } = validRecord();
  for (const [dir, what] of [
    [checkpointDir(t, null), /launch\.json: the file must be an object: got null/],
    [checkpointDir(t, noChoices), /launch\.json: imageChoices must be an object: got nothing/],
    [checkpointDir(t, { ...validRecord(), memoryLimitBytes: '256MiB' }), /launch\.json: memoryLimitBytes must be a number of bytes/],
    [checkpointDir(t, validRecord(), { guest: false }), /cannot read the checkpointed guest .*guest\.wasm \(ENOENT\)/],
  ] as const) {
    for (const command of [['restore'], ['checkpoint', 'inspect']]) {
      const r = await cli([...command, dir]);
      t.is(r.code, 1, `${command.join(' ')}: ${r.err}`);
      t.regex(r.err, what);
      t.regex(r.err, /\[WB_CHECKPOINT_CORRUPT\]/);
    }
  }
});
