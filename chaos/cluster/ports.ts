import net from 'node:net';

/** Ports another engineer's `waterbear up` may be using (the example cluster file): never handed out. */
const RESERVED_PORTS: ReadonlySet<number> = new Set([7000, 7101, 7102, 7103, 7201, 7202]);

/**
 * `count` distinct free loopback ports: all are bound at once (port 0) so they differ, then
 * released. Another process could still take one before we bind it again; callers bind soon.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempts = 0; ports.length < count && attempts < count * 4; attempts++) {
      const s = net.createServer();
      await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(0, '127.0.0.1', () => resolve()); });
      servers.push(s);
      const port = (s.address() as net.AddressInfo).port;
      if (!RESERVED_PORTS.has(port)) ports.push(port);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
  if (ports.length < count) throw new Error(`could not find ${count} free loopback ports`);
  return ports;
}
