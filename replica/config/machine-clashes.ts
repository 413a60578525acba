import { parseListenUri, type ListenAddress } from '../../libos-host/platform/listen-address.js';

/** A member of the cluster file as far as where it runs is concerned. */
export interface PlacedMember { field: string; address: string; dataDir: string; dashboard: string | null; replica: boolean }

/** Hosts that bind every interface: a socket there takes its port on every address of the machine. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::']);

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/**
 * Members whose addresses name one host run on one machine (every loopback address is this
 * machine). There, no two sockets may take one port (the second member would fail to bind and
 * restart for ever) and no two members may share a dataDir (each would overwrite the other's
 * Raft state and store). Members on different hosts may do both: the three-machine example gives
 * each /var/lib/waterbear. Returns the first clash as the field to name and why, or null.
 */
export function firstMachineClash(listen: readonly string[], members: readonly PlacedMember[]): { field: string; why: string } | null {
  const byMachine = new Map<string, PlacedMember[]>();
  for (const m of members) {
    const host = parseListenUri(m.address).host.toLowerCase();
    const machine = isLoopback(host) ? 'loopback' : host;
    byMachine.set(machine, [...(byMachine.get(machine) ?? []), m]);
  }
  for (const onMachine of byMachine.values()) {
    const sockets: Array<{ field: string; text: string; at: ListenAddress }> = [];
    const dataDirs = new Map<string, string>();
    // The primary binds the service addresses on its own machine: each replica's machine may host one.
    if (onMachine.some((m) => m.replica)) listen.forEach((l, i) => sockets.push({ field: `listen[${i}]`, text: l, at: parseListenUri(l) }));
    for (const m of onMachine) {
      const earlier = dataDirs.get(m.dataDir);
      if (earlier !== undefined) return { field: `${m.field}.dataDir`, why: `${m.dataDir} is also ${earlier}.dataDir on the same machine: give each member its own folder` };
      dataDirs.set(m.dataDir, m.field);
      sockets.push({ field: `${m.field}.address`, text: m.address, at: parseListenUri(m.address) });
      if (m.dashboard !== null) sockets.push({ field: `${m.field}.dashboard`, text: m.dashboard, at: parseListenUri(m.dashboard) });
    }
    for (let i = 1; i < sockets.length; i++) {
      for (let j = 0; j < i; j++) {
        if (!sameSocket(sockets[i].at, sockets[j].at)) continue;
        return { field: sockets[i].field, why: `${sockets[i].text} takes the port of ${sockets[j].field} (${sockets[j].text}) on the same machine: give each its own port` };
      }
    }
  }
  return null;
}

function sameSocket(a: ListenAddress, b: ListenAddress): boolean {
  return a.port === b.port && (a.host === b.host || WILDCARD_HOSTS.has(a.host) || WILDCARD_HOSTS.has(b.host));
}
