import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspectModule } from '../libos-host/image/inspect.js';
import type { ClusterConfig } from '../replica/config/cluster-config.js';
import type { ClusterState, GuestInfo } from './model.js';

/** What the guest's module says about itself, read once from the cluster file's guest. */
export interface StaticGuestInfo extends Omit<GuestInfo, 'imageSha256' | 'memory' | 'extensionStack'> {
  memory: { initialPages: number; maximumPages: number | null; limitBytes: number };
}

/** Read and inspect the configured guest module. Never throws: problems are listed instead. */
export function readGuestInfo(config: ClusterConfig): StaticGuestInfo {
  const g = config.guest;
  const base = {
    module: g.module, listeners: [...config.listen], args: [...g.args], envNames: g.env.map((e) => e.split('=')[0]),
    dirs: g.dirs.map((d) => ({ ...d })), tracker: config.replication.tracker,
  };
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(g.module));
  } catch (err) {
    return { ...base, moduleBytes: 0, moduleSha256: '', imports: [], memory: { initialPages: 0, maximumPages: null, limitBytes: g.memoryLimitBytes },
      problems: [`cannot read ${g.module}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`] };
  }
  const sha = createHash('sha256').update(bytes).digest('hex');
  try {
    const r = inspectModule(bytes);
    return {
      ...base, moduleBytes: bytes.length, moduleSha256: sha, imports: r.imports,
      memory: { initialPages: r.memory?.initialPages ?? 0, maximumPages: r.memory?.maximumPages ?? null, limitBytes: g.memoryLimitBytes },
      problems: r.problems,
    };
  } catch (err) {
    return { ...base, moduleBytes: bytes.length, moduleSha256: sha, imports: [], memory: { initialPages: 0, maximumPages: null, limitBytes: g.memoryLimitBytes },
      problems: [(err as Error).message] };
  }
}

/** The guest panel: the module as configured plus what the running primary reports. */
export function guestInfo(s: StaticGuestInfo, cluster: ClusterState): GuestInfo {
  const p = cluster.primaryNumbers;
  return {
    ...s,
    imageSha256: p?.imageSha256 ?? null,
    memory: { ...s.memory, currentBytes: p?.memoryBytes ?? null },
    extensionStack: p === null ? [] : [...p.extensions.map((e) => (e === 'network-buffer' ? 'network-buffer (output commit)' : e)), 'platform (Node sockets, timers, files)'],
  };
}
