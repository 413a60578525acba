/** Spawning test children that run TypeScript under tsx. */
import { spawn, type ChildProcess } from 'node:child_process';
import { REPO } from '../../helpers/lvm.js';

/** Run `script` (a path relative to the repo) with node + tsx. */
export function spawnTs(script: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env },
  });
}

/** Collected output of a child; `until(re)` resolves when stdout+stderr match. */
export function watch(child: ChildProcess): {
  stdout: () => string; stderr: () => string; until: (re: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>; exited: Promise<number | null>;
} {
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); waiters.forEach((w) => w()); });
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); waiters.forEach((w) => w()); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { waiters.forEach((w) => w()); resolve(code); }));
  let done = false;
  void exited.then(() => { done = true; });
  return {
    stdout: () => out,
    stderr: () => err,
    exited,
    until: (re, timeoutMs = 60_000) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; stdout: ${out.slice(-500)} stderr: ${err.slice(-2000)}`)), timeoutMs);
      const check = (): void => {
        const m = (out + '\n' + err).match(re);
        if (m !== null) { clearTimeout(timer); resolve(m); return; }
        if (done) { clearTimeout(timer); reject(new Error(`child exited before ${re}; stdout: ${out.slice(-500)} stderr: ${err.slice(-2000)}`)); }
      };
      waiters.push(check);
      check();
    }),
  };
}

/** SIGKILL a child and wait for it to be gone. */
export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await gone;
}
