import { spawn } from 'node:child_process';
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
