import test from 'ava';
import { readFileSync } from 'node:fs';
import { CLUSTER_FILE_FIELDS, parseClusterConfig } from '../../../replica/config/cluster-config.js';
import { REPO } from '../../helpers/lvm.js';

for (const f of ['deploy/local/waterbear.yaml', 'deploy/three-machines/waterbear.yaml', 'deploy/three-machines/two-plus-witness.yaml']) {
  test(`the example cluster file ${f} is valid`, (t) => {
    const c = parseClusterConfig(readFileSync(`${REPO}${f}`, 'utf8'), `${REPO}${f}`);
    t.true(c.replicas.length >= 2);
  });
}

test('the systemd units start the replica and witness commands with the cluster file', (t) => {
  t.regex(readFileSync(`${REPO}deploy/systemd/waterbear-replica@.service`, 'utf8'), /waterbear\.js replica --config \S+ --id %i/);
  t.regex(readFileSync(`${REPO}deploy/systemd/waterbear-witness@.service`, 'utf8'), /waterbear\.js witness --config \S+ --id %i/);
});

test('the cluster file reference in deploy/README.md lists exactly the fields the parser accepts', (t) => {
  const doc = readFileSync(`${REPO}deploy/README.md`, 'utf8');
  const table = doc.slice(doc.indexOf('## Cluster file reference'));
  // First cells of the table's rows, e.g. "`replicas[].id`, `witnesses[].id`".
  const documented = new Set([...table.matchAll(/^\| (`[^|]+`) \|/gm)].flatMap((m) => [...m[1].matchAll(/`([^`]+)`/g)].map((x) => x[1])));
  // A mapping (guest, coordinator, …) is documented through its own fields.
  const isMapping = (f: string): boolean => CLUSTER_FILE_FIELDS.root.includes(f as never) && f in CLUSTER_FILE_FIELDS;
  const accepted = [
    ...CLUSTER_FILE_FIELDS.root.filter((f) => !isMapping(f)),
    ...CLUSTER_FILE_FIELDS.guest.map((f) => `guest.${f}`),
    ...CLUSTER_FILE_FIELDS.member.flatMap((f) => [`replicas[].${f}`, `witnesses[].${f}`]),
    ...CLUSTER_FILE_FIELDS.coordinator.map((f) => `coordinator.${f}`),
    ...CLUSTER_FILE_FIELDS.replication.map((f) => `replication.${f}`),
    ...CLUSTER_FILE_FIELDS.tls.map((f) => `tls.${f}`),
  ];
  t.deepEqual(accepted.filter((f) => !documented.has(f)), [], 'accepted but not documented');
  t.deepEqual([...documented].filter((f) => !accepted.includes(f)), [], 'documented but not accepted');
});
