import { spawnSync } from 'node:child_process';

/** True when `cmd` is on PATH (optional Debian tools: ip, nft, redis-server, etcd). */
export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
