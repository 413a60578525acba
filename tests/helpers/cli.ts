import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './lvm.js';

export const WATERBEAR = join(REPO, 'cli/waterbear.js');

export interface CliResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Run the built `waterbear` command (dist/) in a child process. */
export function runWaterbear(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WATERBEAR, ...args], {
      env: { ...process.env, WATERBEAR_CACHE_DIR: join(REPO, '.cache/test-images'), ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
    child.stdin.end(opts.input ?? '');
  });
}

/** A `waterbear` command left running: its output so far, and its exit code once it exits. */
export interface RunningWaterbear { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> }

/** Start the built `waterbear ARGS` and collect its output; the test stops it (its own child, by PID). */
export function startWaterbear(args: string[], env: NodeJS.ProcessEnv = {}): RunningWaterbear {
  const child = spawn(process.execPath, [WATERBEAR, ...args], {
    env: { ...process.env, WATERBEAR_CACHE_DIR: join(REPO, '.cache/test-images'), WATERBEAR_LOG_LEVEL: 'error', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}
