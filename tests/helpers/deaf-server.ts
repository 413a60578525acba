import * as grpc from '@grpc/grpc-js';

export interface DeafServer { port: number; connections: Set<string>; stop: () => Promise<void> }

/**
 * A gRPC server whose answers to `method` never come on the first connection, as when flipped
 * bits in the HTTP/2 framing stall its flow control: the TCP connection and HTTP/2 pings stay
 * fine, so gRPC's own keepalive never closes it. Calls on any later connection get `reply`; every
 * other method of `service` answers UNIMPLEMENTED.
 */
export async function serverDeafToFirstConnection(service: grpc.ServiceDefinition, method: string, reply: object): Promise<DeafServer> {
  const server = new grpc.Server();
  const connections = new Set<string>();
  let first: string | null = null;
  const impl: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(service)) {
    impl[name] = name !== method
      ? (_call: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED })
      : (call: grpc.ServerUnaryCall<unknown, object>, cb: grpc.sendUnaryData<object>) => {
        const peer = call.getPeer();
        connections.add(peer);
        first ??= peer;
        if (peer !== first) cb(null, reply); // the first connection's calls hang
      };
  }
  server.addService(service, impl);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, connections, stop: () => new Promise<void>((resolve) => { server.forceShutdown(); resolve(); }) };
}
