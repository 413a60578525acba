import test from 'ava';
import { readFileSync } from 'node:fs';
import { parseClusterConfig } from '../../../replica/config/cluster-config.js';
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
