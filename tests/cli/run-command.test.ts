import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runWaterbear, startWaterbear, type RunningWaterbear } from '../helpers/cli.js';
import { until } from '../helpers/cluster.js';
import { REPO } from '../helpers/lvm.js';

const guest = (name: string): string => join(REPO, 'guests', `${name}.wasm`);
const scratch = (): string => mkdtempSync(join(tmpdir(), 'wb-cli-'));

test('run: exit code and output follow the guest', async (t) => {
  const r = await runWaterbear(['run', guest('test/hello'), '--env', 'GREETING=hey', '--env', 'EXIT_CODE=5', '--', 'x']);
  t.is(r.code, 5);
  t.regex(r.stdout, /arg\[1\]=x/);
  t.regex(r.stdout, /hey/);
  t.regex(r.stderr, /to-stderr/);
});

test('run: a trapping guest prints the trap and the guest function, exit 134', async (t) => {
  const r = await runWaterbear(['run', guest('test/trap')]);
  t.is(r.code, 134);
  t.regex(r.stderr, /guest trapped in guest function .*guest_crash_here.*unreachable/);
});

test('run: a file that is not WebAssembly is refused with a clear error', async (t) => {
  const f = join(scratch(), 'x.wasm');
  writeFileSync(f, 'not wasm at all');
  const r = await runWaterbear(['run', f]);
  t.is(r.code, 1);
  t.regex(r.stderr, /WB_INVALID_MODULE/);
});

test('run: a module with unsupported imports is refused, naming each one', async (t) => {
  // Built with the binaryen API: an unknown module's import and a WASI name that does not exist.
  const binaryen = (await import('binaryen')).default;
  const m = new binaryen.Module();
  m.addFunctionImport('open_socket', 'env', 'open_socket', binaryen.none, binaryen.none);
  m.addFunctionImport('sock_connect', 'wasi_snapshot_preview1', 'sock_connect', binaryen.none, binaryen.none);
  m.setMemory(1, 1, 'memory');
  m.addFunction('start', binaryen.none, binaryen.none, [], m.nop());
  m.addFunctionExport('start', '_start');
  const f = join(scratch(), 'bad.wasm');
  writeFileSync(f, m.emitBinary());
  const r = await runWaterbear(['run', f]);
  t.is(r.code, 1);
  t.regex(r.stderr, /WB_UNSUPPORTED_IMPORT/);
  t.regex(r.stderr, /env\.open_socket/);
  t.regex(r.stderr, /wasi_snapshot_preview1\.sock_connect/);
  const i = await runWaterbear(['inspect', f]);
  t.is(i.code, 1);
  t.regex(i.stdout, /open_socket/);
});

test('run and inspect refuse a WASI import declared with the wrong signature, naming both signatures', async (t) => {
  const binaryen = (await import('binaryen')).default;
  const m = new binaryen.Module();
  m.addFunctionImport('fd_write', 'wasi_snapshot_preview1', 'fd_write', binaryen.createType([binaryen.i64]), binaryen.f32);
  m.setMemory(1, 1, 'memory');
  m.addFunction('start', binaryen.none, binaryen.none, [], m.drop(m.call('fd_write', [m.i64.const(1n as never)], binaryen.f32)));
  m.addFunctionExport('start', '_start');
  const f = join(scratch(), 'bad-signature.wasm');
  writeFileSync(f, m.emitBinary());
  const i = await runWaterbear(['inspect', f]);
  t.is(i.code, 1);
  t.regex(i.stdout, /runnable: NO/);
  t.regex(i.stdout, /fd_write as \(i64\) -> f32, but WASI preview 1 defines it as \(i32, i32, i32, i32\) -> i32/);
  const r = await runWaterbear(['run', f]);
  t.is(r.code, 1);
  t.regex(r.stderr, /WB_UNSUPPORTED_IMPORT/);
  t.regex(r.stderr, /\(i32, i32, i32, i32\) -> i32/);
});

test('run: a start function that traps exits 134 like any other trap, one that calls WASI is a typed error, neither a stack trace; inspect notes the start section', async (t) => {
  const binaryen = (await import('binaryen')).default;
  const build = (body: (m: InstanceType<typeof binaryen.Module>) => number, withFdWrite: boolean): string => {
    const m = new binaryen.Module();
    if (withFdWrite) m.addFunctionImport('fd_write', 'wasi_snapshot_preview1', 'fd_write', binaryen.createType([binaryen.i32, binaryen.i32, binaryen.i32, binaryen.i32]), binaryen.i32);
    m.setMemory(1, 1, 'memory');
    m.setStart(m.addFunction('init', binaryen.none, binaryen.none, [], body(m)));
    m.addFunction('main', binaryen.none, binaryen.none, [], m.nop());
    m.addFunctionExport('main', '_start');
    const f = join(scratch(), 'start.wasm');
    writeFileSync(f, m.emitBinary());
    return f;
  };
  const trapping = build((m) => m.unreachable(), false);
  const i = await runWaterbear(['inspect', trapping]);
  t.is(i.code, 0);
  t.regex(i.stdout, /notes:\n {2}- the module has a start section/);
  const r1 = await runWaterbear(['run', trapping]);
  t.is(r1.code, 134, r1.stderr);
  // As a trap in _start prints it (see 'a trapping guest prints the trap…'): the trap, the guest function.
  t.regex(r1.stderr, /^waterbear: guest trapped in guest function \S+: unreachable, in the module's start function, .*: fix or remove its start section$/m);
  const calling = build((m) => m.drop(m.call('fd_write', [1, 0, 0, 0].map((v) => m.i32.const(v)), binaryen.i32)), true);
  const r2 = await runWaterbear(['run', calling]);
  t.is(r2.code, 1);
  t.regex(r2.stderr, /start function calls wasi_snapshot_preview1\.fd_write.*\[WB_INVALID_MODULE\]/);
  for (const r of [r1, r2]) t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
});

test('run: bad flags get a precise usage error and exit 2', async (t) => {
  for (const args of [
    ['run', guest('test/hello'), '--memory-limit', 'lots'],
    ['run', guest('test/hello'), '--listen', '127.0.0.1'],
    ['run', guest('test/hello'), '--fault', 'call=reed,errno=EIO'],
    ['run', guest('test/hello'), '--bogus'],
    ['run'],
  ]) {
    const r = await runWaterbear(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /WB_CONFIG_INVALID/);
  }
  // A size the guest cannot have is a usage error naming the flag, not an internal option.
  const big = await runWaterbear(['run', guest('test/hello'), '--memory-limit', '8GiB']);
  t.is(big.code, 2, big.stderr);
  t.regex(big.stderr, /--memory-limit must be between 64KiB and 4GiB: got 8589934592 bytes/);
});

test('run: --trace writes one JSON line per host call', async (t) => {
  const trace = join(scratch(), 'trace.jsonl');
  const r = await runWaterbear(['run', guest('test/hello'), '--trace', trace]);
  t.is(r.code, 0);
  const lines = readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { call: string });
  t.true(lines.some((l) => l.call === 'write'), JSON.stringify(lines.slice(0, 5)));
});

test('run: --listen on a busy address fails cleanly with WB_LISTEN_FAILED', async (t) => {
  const net = await import('node:net');
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as { port: number }).port;
  const r = await runWaterbear(['run', guest('kv'), '--listen', `127.0.0.1:${port}`]);
  s.close();
  t.is(r.code, 1);
  t.regex(r.stderr, /WB_LISTEN_FAILED/);
  t.regex(r.stderr, /EADDRINUSE.*stop the process using it/);
});

test('run: --listen on an address that is not on this machine says so, not to stop a process using it', async (t) => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): documentation only, never an address of this machine.
  const r = await runWaterbear(['run', guest('kv'), '--listen', '192.0.2.1:7000']);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /cannot listen on 192\.0\.2\.1:7000: EADDRNOTAVAIL, .*not an address of this machine.*\[WB_LISTEN_FAILED\]/);
  t.notRegex(r.stderr, /stop the process/);
});

test('run: --listen with an invalid IPv4 address is a usage error at the flag, exit 2', async (t) => {
  for (const address of ['256.1.1.1', '1.2.3', '127.0.0.01']) {
    const r = await runWaterbear(['run', guest('kv'), '--listen', `${address}:7000`]);
    t.is(r.code, 2, `${address}: ${r.stderr}`);
    t.true(r.stderr.includes(`listen address "${address}:7000" has an invalid IPv4 address`), r.stderr);
    t.regex(r.stderr, /\[WB_CONFIG_INVALID\]/);
  }
});

test('run: a setup error after --listen is bound exits with a clear error instead of hanging', async (t) => {
  const file = join(scratch(), 'a-file');
  writeFileSync(file, 'not a directory');
  const r = await runWaterbear(['run', guest('kv'), '--listen', '127.0.0.1:0', '--dir', `/d=${file}`],);
  t.is(r.signal, null, 'it exited by itself (the bound listener did not keep it alive)');
  t.is(r.code, 2);
  t.regex(r.stderr, /a-file is a file, not a directory.*WB_CONFIG_INVALID/);
  t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
});

test('run: a --checkpoint-dir that is a file (or lies under one) is a usage error naming it, exit 2', async (t) => {
  const file = join(scratch(), 'a-file');
  writeFileSync(file, 'not a directory');
  for (const dir of [file, join(file, 'below')]) {
    const r = await runWaterbear(['run', guest('test/hello'), '--checkpoint-dir', dir]);
    t.is(r.code, 2, r.stderr);
    t.true(r.stderr.includes(`--checkpoint-dir ${dir} is not a directory (a file is in the way)`), r.stderr);
    t.regex(r.stderr, /\[WB_CONFIG_INVALID\]/);
  }
  t.is(readFileSync(file, 'utf8'), 'not a directory');
});

/** A guest that prints "spinning" and then loops forever without a system call. */
async function spinningGuest(): Promise<string> {
  const binaryen = (await import('binaryen')).default;
  const m = new binaryen.Module();
  m.addFunctionImport('fd_write', 'wasi_snapshot_preview1', 'fd_write', binaryen.createType([binaryen.i32, binaryen.i32, binaryen.i32, binaryen.i32]), binaryen.i32);
  m.setMemory(1, 1, 'memory', [{ offset: m.i32.const(16), data: new TextEncoder().encode('spinning\n'), passive: false }]);
  m.addFunction('main', binaryen.none, binaryen.none, [], m.block(null, [
    m.i32.store(0, 4, m.i32.const(0), m.i32.const(16)),
    m.i32.store(0, 4, m.i32.const(4), m.i32.const(9)),
    m.drop(m.call('fd_write', [1, 0, 1, 8].map((v) => m.i32.const(v)), binaryen.i32)),
    m.loop('spin', m.br('spin')),
  ]));
  m.addFunctionExport('main', '_start');
  const f = join(scratch(), 'spin.wasm');
  writeFileSync(f, m.emitBinary());
  return f;
}

/** Signal a running waterbear once its guest printed `ready`; it must stop within a few seconds. */
async function stopsOn(t: import('ava').ExecutionContext, w: RunningWaterbear, ready: RegExp, signal: NodeJS.Signals): Promise<void> {
  t.teardown(() => { if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL'); });
  await until(`the guest to print ${String(ready)}`, () => ready.test(w.out() + w.err()), 60_000);
  await new Promise((r) => setTimeout(r, 200)); // well inside the loop
  w.child.kill(signal);
  const code = await Promise.race([w.exited, new Promise((r) => setTimeout(() => r('still running'), 5_000))]);
  t.is(code, 0, `${signal}: ${w.err()}`);
  t.regex(w.err(), new RegExp(`waterbear: ${signal}, stopping the guest`));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`run: ${signal} stops a guest that loops without a system call`, async (t) => {
    await stopsOn(t, startWaterbear(['run', await spinningGuest()]), /spinning/, signal);
  });
}

test('restore --no-checkpoint: SIGTERM stops a restored guest that loops without a system call', async (t) => {
  const dir = join(scratch(), 'cp');
  const first = startWaterbear(['run', await spinningGuest(), '--checkpoint-dir', dir]);
  t.teardown(() => { if (first.child.exitCode === null) first.child.kill('SIGKILL'); });
  await until('a checkpoint', () => /checkpoint epoch 1 written/.test(first.err()), 60_000);
  first.child.kill('SIGKILL');
  await first.exited;
  await stopsOn(t, startWaterbear(['restore', dir, '--no-checkpoint']), /restored epoch/, 'SIGTERM');
});
