import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { ReplicaClient, type StatusReply } from '../../../replica/wire/replication-wire.js';
import { startTestCluster } from '../../helpers/cluster.js';
import { toolAvailable } from '../../helpers/tools.js';
import { makeTestPki } from '../../helpers/tls-certs.js';

const run = toolAvailable('openssl', 'makes the test certificates') ? test : test.skip;

function status(address: string, creds: grpc.ChannelCredentials): Promise<StatusReply> {
  const client = new ReplicaClient(address, creds) as unknown as grpc.Client & {
    status(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, r?: StatusReply) => void): void;
  };
  return new Promise((resolve, reject) => client.status({}, { deadline: Date.now() + 3000 }, (err, r) => {
    client.close();
    if (err !== null) reject(err); else resolve(r!);
  }));
}

run('replication and coordination run over mutual TLS; a peer with a wrong certificate, or none, is refused', async (t) => {
  const good = makeTestPki('cluster');
  const evil = makeTestPki('intruder');
  const stderrFile = join(good.dir, 'members.log');
  const c = await startTestCluster({ extraYaml: `tls: { ca: ${good.ca}, cert: ${good.cert}, key: ${good.key} }\n`, stderrFile });
  t.teardown(() => c.stop());
  const p = await c.protectedPrimary(1, 60_000);
  const client = await c.client();
  t.is(await client.call('SET', 'k', 'v'), 'OK');
  client.close();
  const address = c.config.replicas.find((r) => r.id === p.replicaId)!.address;
  const read = (f: string): Buffer => readFileSync(f);
  // The cluster's own credentials work.
  const ok = await status(address, grpc.credentials.createSsl(read(good.ca), read(good.key), read(good.cert)));
  t.is(ok.role, 'primary');
  // A certificate from another CA is refused in the handshake.
  await t.throwsAsync(status(address, grpc.credentials.createSsl(read(good.ca), read(evil.key), read(evil.cert))));
  // So is a client without a certificate, and a plaintext one.
  await t.throwsAsync(status(address, grpc.credentials.createSsl(read(good.ca))));
  await t.throwsAsync(status(address, grpc.credentials.createInsecure()));
  // Members dial each other by IP over TLS: Node's DEP0123 (SNI to an IP) says nothing an
  // operator can act on and is muted by the launcher (cli/known-warnings.ts).
  await c.stop();
  t.notRegex(readFileSync(stderrFile, 'utf8'), /DEP0123|DeprecationWarning/);
});
