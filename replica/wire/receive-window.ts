import type * as http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

/**
 * HTTP/2 receive window of a replica's gRPC server, per stream and per connection. Node's
 * default is 64 KiB: a sender then waits one WINDOW_UPDATE round trip per 64 KiB, i.e. per
 * turn of the receiver's busy event loop. A 1 MiB pre-copy slice took ~16 such turns (20-30 ms
 * under load) and a 75 KB checkpoint stalled mid-message. Memory stays bounded by the
 * application's own windows (pre-copy messages, epochs and bytes in flight), not by this one.
 */
export const RECEIVE_WINDOW_BYTES = 16 * 1024 * 1024;

/** The grpc-js 1.14 internals this relies on (see bindWithReceiveWindow). */
interface ServerInternals {
  commonServerOptions?: http2.ServerOptions;
  http2Servers?: Map<http2.Http2Server, unknown>;
}

/**
 * Bind `server` with HTTP/2 receive windows of `bytes`. grpc-js 1.14 reads no flow-control
 * option on the server (grpc-node pull request #3058 proposes `grpc-node.flow_control_window`,
 * doing the same): the per-stream window goes into the settings its HTTP/2 servers are created
 * with, the connection window is raised on each session. Both touch grpc-js internals; when they
 * are not there (another grpc-js), the server binds with Node's default window and
 * `windowRaised` is false: replication still works, only slower, and the caller says so.
 */
export async function bindWithReceiveWindow(server: grpc.Server, address: string, credentials: grpc.ServerCredentials, bytes = RECEIVE_WINDOW_BYTES): Promise<{ port: number; windowRaised: boolean }> {
  const internals = server as unknown as ServerInternals;
  const common = internals.commonServerOptions;
  const settingsRaised = common !== undefined && typeof common === 'object';
  if (settingsRaised) common.settings = { ...common.settings, initialWindowSize: bytes };
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, credentials, (err, p) => (err === null ? resolve(p) : reject(err)));
  });
  const servers = internals.http2Servers;
  if (!(servers instanceof Map) || servers.size === 0) return { port, windowRaised: false };
  for (const h of servers.keys()) {
    h.on('session', (session: http2.ServerHttp2Session) => {
      try {
        session.setLocalWindowSize(bytes);
      } catch { /* a session closing already */ }
    });
  }
  return { port, windowRaised: settingsRaised };
}
