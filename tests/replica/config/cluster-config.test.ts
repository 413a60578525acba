import test from 'ava';
import { DEFAULT_MEMORY_STORE_INTERVAL_MS, loadClusterConfig, parseClusterConfig, plaintextLinks } from '../../../replica/config/cluster-config.js';
import { REPO } from '../../helpers/lvm.js';

const BASE = `
guest: { module: kv.wasm }
listen: [127.0.0.1:7000]
replicas:
  - { id: a, address: 127.0.0.1:7101 }
  - { id: b, address: 127.0.0.1:7102 }
witnesses:
  - { id: w, address: 127.0.0.1:7103 }
`;
/** Two replicas on etcd (no witness: etcd is the quorum). */
const ETCD = BASE.replace(/witnesses:\n.*\n/, '');

test('the example one-machine cluster file is valid', (t) => {
  const c = loadClusterConfig(`${REPO}deploy/local/waterbear.yaml`);
  t.deepEqual(c.replicas.map((r) => r.id), ['a', 'b']);
  t.deepEqual(c.witnesses.map((r) => r.id), ['w']);
  t.true(c.guest.module.endsWith('guests/kv.wasm'));
  t.is(c.replication.checkpointMaxIntervalMs, 25);
  t.is(c.replication.ackAfter, 'disk');
});

test('defaults fill what the file leaves out', (t) => {
  const c = parseClusterConfig(BASE, '/tmp/x.yaml');
  t.is(c.coordinator.backend, 'raft');
  t.is(c.replication.heartbeatTimeoutMs, 300);
  t.is(c.guest.memoryLimitBytes, 256 * 1024 * 1024);
  t.is(c.replication.pageDeltas, true);
  t.is(parseClusterConfig(BASE + 'replication: { pageDeltas: false }\n', '/tmp/x.yaml').replication.pageDeltas, false);
  t.is(c.allowPlaintext, false);
  // The epoch policy's defaults follow the acknowledgement mode (docs/replication.md, "Epochs").
  t.is(c.replication.ackAfter, 'disk');
  t.is(c.replication.checkpointMinIntervalMs, 0);
  t.is(c.replication.checkpointPipelineDepth, 1);
  const m = parseClusterConfig(BASE + 'replication: { ackAfter: memory }\n', '/tmp/x.yaml').replication;
  t.is(m.checkpointMinIntervalMs, 1);
  t.is(m.checkpointPipelineDepth, 2);
  t.is(m.memoryStoreIntervalMs, DEFAULT_MEMORY_STORE_INTERVAL_MS);
  t.is(parseClusterConfig(BASE + 'replication: { ackAfter: memory, memoryStoreInterval: 0ms }\n', '/tmp/x.yaml').replication.memoryStoreIntervalMs, 0);
  t.is(parseClusterConfig(BASE + 'replication: { checkpointPipelineDepth: 3 }\n', '/tmp/x.yaml').replication.checkpointPipelineDepth, 3);
  const g = parseClusterConfig(BASE.replace('module: kv.wasm', 'module: kv.wasm, args: [serve, 8, true], env: { N: 3 }'), '/tmp/x.yaml').guest;
  t.deepEqual(g.args, ['serve', '8', 'true']);
  t.deepEqual(g.env, ['N=3']);
});

const BAD: Array<[string, string, RegExp]> = [
  ['not yaml', 'guest: [unclosed', /not valid YAML/],
  ['unknown field', BASE + 'replicaz: []\n', /replicaz is not a cluster-file field/],
  ['no listen', BASE.replace('listen: [127.0.0.1:7000]', ''), /listen is required/],
  ['bad address', BASE.replace('127.0.0.1:7102', '127.0.0.1'), /replicas\[1\]\.address/],
  ['duplicate id', BASE.replace('id: b', 'id: a'), /"a" is used twice/],
  ['duplicate address', BASE.replace('127.0.0.1:7102', '127.0.0.1:7101'), /used twice/],
  ['even voters', BASE.replace(/witnesses:\n.*\n/, ''), /odd number of voters: add a witness/],
  ['bad interval', BASE + 'replication: { checkpointMaxInterval: 0ms }\n', /checkpointMaxInterval must be between 1 ms and 10000 ms: got 0 ms/],
  ['store interval too long', BASE + 'replication: { memoryStoreInterval: 1min }\n', /memoryStoreInterval must be between 0 ms and 10000 ms/],
  ['interval without unit', BASE + 'replication: { heartbeatInterval: fast }\n', /heartbeatInterval must be a duration/],
  ['timeout below 3 heartbeats', BASE + 'replication: { heartbeatInterval: 100ms, heartbeatTimeout: 200ms }\n', /at least 3 heartbeat intervals/],
  ['bad ackAfter', BASE + 'replication: { ackAfter: never }\n', /ackAfter must be "disk" or "memory"/],
  ['bad pageDeltas', BASE + 'replication: { pageDeltas: sometimes }\n', /replication\.pageDeltas must be true or false: got "sometimes"/],
  ['misspelt replication field', BASE + 'replication: { pageDelta: false }\n', /replication\.pageDelta is not a replication field/],
  ['misspelt guest field', BASE.replace('module: kv.wasm', 'module: kv.wasm, memoryLimt: 1GiB'), /guest\.memoryLimt is not a guest field \(fields: module, args, env, memoryLimit, dirs\)/],
  ['misspelt member field', BASE.replace('id: b,', 'id: b, datadir: /tmp/b,'), /replicas\[1\]\.datadir is not a replicas\[1\] field/],
  ['misspelt witness field', BASE.replace('id: w,', 'id: w, dashbord: 127.0.0.1:8080,'), /witnesses\[0\]\.dashbord is not a witnesses\[0\] field/],
  ['etcd field on the embedded Raft', BASE + 'coordinator: { endpoints: [127.0.0.1:2379] }\n', /coordinator\.endpoints is not a coordinator field \(fields: backend\)/],
  ['misspelt etcd field', BASE + 'coordinator: { backend: etcd, endpoints: [127.0.0.1:2379], prefx: /x/ }\n', /coordinator\.prefx is not a coordinator field/],
  ['misspelt tls field', BASE + 'tls: { ca: ca.pem, cert: c.pem, key: k.pem, verify: false }\n', /tls\.verify is not a tls field \(fields: ca, cert, key\)/],
  ['allowPlaintext not a boolean', BASE + 'allowPlaintext: yes-please\n', /allowPlaintext must be true or false: got "yes-please"/],
  ['fractional depth', BASE + 'replication: { checkpointPipelineDepth: 1.5 }\n', /checkpointPipelineDepth must be a whole number: got 1\.5/],
  ['depth as text', BASE + 'replication: { maxInflightEpochs: many }\n', /maxInflightEpochs must be a whole number: got "many"/],
  ['guest argument not a scalar', BASE.replace('module: kv.wasm', 'module: kv.wasm, args: [{ a: 1 }]'), /guest\.args\[0\] must be a string, number or boolean/],
  ['plaintext off loopback', BASE.replace('127.0.0.1:7101', '10.0.0.5:7101'), /not loopback: configure tls/],
  ['bad backend', BASE + 'coordinator: { backend: zookeeper }\n', /must be "raft" or "etcd"/],
  ['etcd endpoint without a scheme', ETCD + 'coordinator: { backend: etcd, endpoints: [127.0.0.1:2379] }\n', /coordinator\.endpoints\[0\] must be an etcd client URL, http\(s\):\/\/host:port: got "127\.0\.0\.1:2379"/],
  ['no etcd endpoints', ETCD + 'coordinator: { backend: etcd, endpoints: [] }\n', /coordinator\.endpoints must name at least one etcd client URL/],
  ['mixed etcd schemes', ETCD + 'coordinator: { backend: etcd, endpoints: [http://127.0.0.1:2379, https://127.0.0.1:2380] }\n', /coordinator\.endpoints must be all http:\/\/ or all https:\/\//],
  ['plaintext etcd off loopback', ETCD + 'coordinator: { backend: etcd, endpoints: [http://10.0.0.21:2379] }\n', /coordinator\.endpoints http:\/\/10\.0\.0\.21:2379 is not loopback: use https:\/\/ endpoints/],
  ['plaintext etcd off loopback, cluster tls or not', ETCD + 'tls: { ca: ca.pem, cert: c.pem, key: k.pem }\ncoordinator: { backend: etcd, endpoints: [http://10.0.0.21:2379] }\n', /is not loopback: use https:\/\/ endpoints/],
  ['etcd tls with http endpoints', ETCD + 'coordinator: { backend: etcd, endpoints: [http://127.0.0.1:2379], tls: { ca: ca.pem, cert: c.pem, key: k.pem } }\n', /coordinator\.tls is given but the endpoints are http:\/\//],
  ['witness with a dashboard', BASE.replace('id: w,', 'id: w, dashboard: 127.0.0.1:8080,'), /witnesses\[0\]\.dashboard must not be set: a witness serves no dashboard/],
  ['witnesses with etcd', BASE + 'coordinator: { backend: etcd, endpoints: [http://127.0.0.1:2379] }\n', /witnesses are voters of the embedded Raft only/],
  ['etcd prefix without slashes', ETCD + 'coordinator: { backend: etcd, endpoints: [http://127.0.0.1:2379], prefix: waterbear }\n', /coordinator\.prefix must start and end with "\/".*got "waterbear"/],
  ['cluster name unfit for etcd keys', 'cluster: "my prod"\n' + ETCD + 'coordinator: { backend: etcd, endpoints: [http://127.0.0.1:2379] }\n', /cluster names the cluster's keys in etcd, so it must be a name of letters, digits/],
  ['memory limit below one wasm page', BASE.replace('module: kv.wasm', 'module: kv.wasm, memoryLimit: 1KiB'), /guest\.memoryLimit must be between 64KiB and 4GiB: got 1024 bytes/],
  ['memory limit beyond wasm32', BASE.replace('module: kv.wasm', 'module: kv.wasm, memoryLimit: 8GiB'), /guest\.memoryLimit must be between 64KiB and 4GiB/],
  ['no service address', BASE.replace('listen: [127.0.0.1:7000]', 'listen: []'), /listen must name at least one service address/],
  ['member on port 0', BASE.replace('127.0.0.1:7102', '127.0.0.1:0'), /replicas\[1\]\.address must name a fixed port, not 0/],
  ['service on port 0', BASE.replace('listen: [127.0.0.1:7000]', 'listen: [127.0.0.1:0]'), /listen\[0\] must name a fixed port/],
  ['two members share a dataDir', BASE.replace('id: b,', 'id: b, dataDir: .waterbear/a,'), /replicas\[1\]\.dataDir \S*\/\.waterbear\/a is also replicas\[0\]\.dataDir on the same machine/],
  ['a witness shares a replica\'s dataDir', BASE.replace('id: w,', 'id: w, dataDir: .waterbear/b,'), /witnesses\[0\]\.dataDir .* is also replicas\[1\]\.dataDir/],
  ['service address on a member\'s port', BASE.replace('listen: [127.0.0.1:7000]', 'listen: [127.0.0.1:7102]'), /replicas\[1\]\.address 127\.0\.0\.1:7102 takes the port of listen\[0\]/],
  ['wildcard service address on a member\'s port', BASE.replace('listen: [127.0.0.1:7000]', 'listen: [0.0.0.0:7103]'), /witnesses\[0\]\.address 127\.0\.0\.1:7103 takes the port of listen\[0\] \(0\.0\.0\.0:7103\)/],
  ['two dashboards on one port', BASE.replace('id: a,', 'id: a, dashboard: 127.0.0.1:8080,').replace('id: b,', 'id: b, dashboard: 127.0.0.1:8080,'), /replicas\[1\]\.dashboard 127\.0\.0\.1:8080 takes the port of replicas\[0\]\.dashboard/],
  ['a dashboard on the service port', BASE.replace('id: a,', 'id: a, dashboard: 127.0.0.1:7000,'), /replicas\[0\]\.dashboard 127\.0\.0\.1:7000 takes the port of listen\[0\]/],
  ['a service address twice', BASE.replace('listen: [127.0.0.1:7000]', 'listen: [127.0.0.1:7000, "[::]:7000"]'), /listen\[1\] \[::\]:7000 takes the port of listen\[0\]/],
  ['address with a scheme', BASE.replace('127.0.0.1:7102', 'http://127.0.0.1:7102'), /replicas\[1\]\.address listen address "http:\/\/127\.0\.0\.1:7102" is a URL: give host:port without a scheme/],
  ['etcd tls with a cert and no key', ETCD + 'coordinator: { backend: etcd, endpoints: [https://127.0.0.1:2379], tls: { ca: ca.pem, cert: c.pem } }\n', /coordinator\.tls cert and key go together/],
  ['etcd tls without its ca', ETCD + 'coordinator: { backend: etcd, endpoints: [https://127.0.0.1:2379], tls: { cert: c.pem, key: k.pem } }\n', /coordinator\.tls\.ca must be a non-empty string/],
];
test('members on different machines may share a dataDir and ports; on one machine they may not', (t) => {
  // The three-machine example: each machine has its own /var/lib/waterbear and the same ports.
  const c = loadClusterConfig(`${REPO}deploy/three-machines/waterbear.yaml`);
  t.deepEqual(new Set(c.replicas.map((r) => r.dataDir)).size, 1);
  const apart = parseClusterConfig(ETCD.replace('127.0.0.1:7101', '10.0.0.11:7101').replace('127.0.0.1:7102', '10.0.0.12:7101')
    .replace('listen: [127.0.0.1:7000]', 'listen: [0.0.0.0:7000]').replace(/id: (a|b),/g, 'id: $1, dataDir: /var/lib/wb, dashboard: 0.0.0.0:8080,')
    + 'allowPlaintext: true\ncoordinator: { backend: etcd, endpoints: [http://127.0.0.1:2379] }\n', '/tmp/x.yaml');
  t.deepEqual(apart.replicas.map((r) => r.dataDir), ['/var/lib/wb', '/var/lib/wb']);
  // Every loopback address is this machine.
  const err = t.throws(() => parseClusterConfig(BASE.replace('127.0.0.1:7102', '127.0.0.2:7102').replace(/id: (a|b),/g, 'id: $1, dataDir: /var/lib/wb,'), 'cluster.yaml'));
  t.regex(err!.message, /replicas\[1\]\.dataDir \/var\/lib\/wb is also replicas\[0\]\.dataDir on the same machine/);
});

test('etcd over https uses coordinator.tls, else the cluster tls, else the system CAs; plaintext off loopback needs allowPlaintext and is listed for a warning', (t) => {
  const etcd = (c: ReturnType<typeof parseClusterConfig>) => (c.coordinator.backend === 'etcd' ? c.coordinator : t.fail('not etcd') as never);
  const own = parseClusterConfig(ETCD + 'tls: { ca: ca.pem, cert: c.pem, key: k.pem }\ncoordinator: { backend: etcd, endpoints: [https://10.0.0.21:2379], tls: { ca: /pki/etcd-ca.pem, cert: /pki/e.pem, key: /pki/e-key.pem } }\n', '/etc/wb/x.yaml');
  t.deepEqual(etcd(own).tls, { ca: '/pki/etcd-ca.pem', cert: '/pki/e.pem', key: '/pki/e-key.pem' });
  const shared = parseClusterConfig(ETCD + 'tls: { ca: ca.pem, cert: c.pem, key: k.pem }\ncoordinator: { backend: etcd, endpoints: [https://10.0.0.21:2379] }\n', '/etc/wb/x.yaml');
  t.deepEqual(etcd(shared).tls, { ca: '/etc/wb/ca.pem', cert: '/etc/wb/c.pem', key: '/etc/wb/k.pem' });
  t.is(etcd(parseClusterConfig(ETCD + 'coordinator: { backend: etcd, endpoints: [https://10.0.0.21:2379] }\n', '/etc/wb/x.yaml')).tls, null);
  // etcd serving TLS without asking for client certificates: its CA alone; cert and key go together.
  const caOnly = parseClusterConfig(ETCD + 'coordinator: { backend: etcd, endpoints: [https://10.0.0.21:2379], tls: { ca: /pki/etcd-ca.pem } }\n', '/etc/wb/x.yaml');
  t.deepEqual(etcd(caOnly).tls, { ca: '/pki/etcd-ca.pem', cert: null, key: null });
  const half = t.throws(() => parseClusterConfig(ETCD + 'coordinator: { backend: etcd, endpoints: [https://10.0.0.21:2379], tls: { ca: a.pem, cert: c.pem } }\n', '/etc/wb/x.yaml'));
  t.regex(half!.message, /coordinator\.tls cert and key go together/);
  t.throws(() => parseClusterConfig(ETCD + 'tls: { ca: ca.pem }\n', '/etc/wb/x.yaml'), { message: /tls\.cert/ }, 'the replicas\' own TLS stays mutual');
  const local = parseClusterConfig(ETCD + 'coordinator: { backend: etcd, endpoints: [http://127.0.0.1:2379, "http://[::1]:2379"] }\n', '/tmp/x.yaml');
  t.is(etcd(local).tls, null);
  t.deepEqual(plaintextLinks(local), []);
  const open = parseClusterConfig(ETCD.replace('127.0.0.1:7102', '10.0.0.12:7101') + 'allowPlaintext: true\ncoordinator: { backend: etcd, endpoints: [http://10.0.0.21:2379] }\n', '/tmp/x.yaml');
  t.deepEqual(plaintextLinks(open), ['member b 10.0.0.12:7101', 'etcd http://10.0.0.21:2379']);
  t.deepEqual(plaintextLinks(shared), []);
});

for (const [name, text, re] of BAD) {
  test(`a bad cluster file is refused precisely: ${name}`, (t) => {
    const err = t.throws(() => parseClusterConfig(text, 'cluster.yaml'));
    t.is((err as { code?: string }).code, 'WB_CONFIG_INVALID');
    t.regex(err!.message, re);
  });
}
