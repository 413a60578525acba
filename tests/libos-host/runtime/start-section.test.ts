/**
 * A module with a start section runs guest code while it is instantiated, before _start and
 * before the library OS has its memory: a trap there or a WASI call from there is a typed error
 * (no listener stays bound), and inspection says what it can tell without running it.
 */
import { createServer } from 'node:net';
import test from 'ava';
import { freePort } from '../../../bench/support/servers.js';
import { WaterbearError } from '../../../libos-host/errors.js';
import { formatReport, inspectModule } from '../../../libos-host/image/inspect.js';
import { startGuest } from '../../helpers/lvm.js';
import { wat } from '../image/helpers.js';

const FD_WRITE = '(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))';
const MEMORY = '(memory (export "memory") 1)';
const START = '(func (export "_start"))';

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  const ok = await new Promise<boolean>((resolve) => { server.once('error', () => resolve(false)); server.listen(port, '127.0.0.1', () => resolve(true)); });
  await new Promise((resolve) => server.close(resolve));
  return ok;
}

test('a start function that traps is refused with WB_GUEST_TRAP at launch, and no listener stays bound', async (t) => {
  const bytes = await wat(`(module ${MEMORY} (func $init unreachable) (start $init) ${START})`);
  const port = await freePort();
  const err = await t.throwsAsync(startGuest('start-trap', { bytes, listeners: [{ uri: `tcp.srv:127.0.0.1:${port}`, name: null }] }), { instanceOf: WaterbearError });
  t.is(err?.code, 'WB_GUEST_TRAP');
  t.regex(err?.message ?? '', /unreachable, in the module's start function/);
  t.true(await portIsFree(port));
  t.true(inspectModule(bytes).runnable);
  t.regex(formatReport(inspectModule(bytes)), /runnable: yes \(see the notes\)[^]*notes:\n {2}- the module has a start section/);
});

test('a start function that calls a WASI function is refused with WB_INVALID_MODULE naming it', async (t) => {
  const bytes = await wat(`(module ${FD_WRITE} ${MEMORY}
    (func $init (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)))) (start $init) ${START})`);
  const err = await t.throwsAsync(startGuest('start-wasi', { bytes }), { instanceOf: WaterbearError });
  t.is(err?.code, 'WB_INVALID_MODULE');
  t.regex(err?.message ?? '', /start function calls wasi_snapshot_preview1\.fd_write/);
});

test('a start function that neither traps nor calls WASI runs, and the guest then runs from _start', async (t) => {
  const bytes = await wat(`(module ${FD_WRITE} ${MEMORY} (global $ready (mut i32) (i32.const 0))
    (data (i32.const 16) "started\\n")
    (func $init (global.set $ready (i32.const 1))) (start $init)
    (func (export "_start")
      (if (global.get $ready) (then
        (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 8))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))))`);
  const g = await startGuest('start-ok', { bytes });
  t.deepEqual(await g.run(), { kind: 'exit', code: 0 });
  t.is(g.stdout(), 'started\n');
  t.deepEqual(inspectModule(await wat(`(module ${MEMORY} ${START})`)).notes, [], 'no start section, no note');
});
