import test from 'ava';
import { RespClient } from '../../../chaos/clients/resp-client.js';
import { until } from '../../helpers/cluster.js';
import { checkpointsForIdleSpacedSets } from '../../helpers/idle-requests.js';
import { inProcessTwoNodes } from '../../helpers/two-nodes.js';

const MAX_INTERVAL_MS = 25;
const IDLE_MS = 3 * MAX_INTERVAL_MS;
const REQUESTS = 10;
/** Checkpoints a busy host may add (a request that ran past a deadline is split in two epochs). */
const SLACK = 4;

test('a request after an idle spell longer than the max interval is committed in one epoch, not two', async (t) => {
  const { a, b, svc } = await inProcessTwoNodes({ replication: `checkpointMaxInterval: ${MAX_INTERVAL_MS}ms, heartbeatInterval: 100ms, heartbeatTimeout: 3s` });
  try {
    await until('protected', () => a.statusReply().protected, 20_000);
    const c = await until('service', () => RespClient.connect(svc));
    const epochs = await checkpointsForIdleSpacedSets(t, c, REQUESTS, IDLE_MS, () => a.statusReply().epoch);
    // Each reply needs one checkpoint. Counting blocked time toward the max interval ended an
    // empty epoch at the first suspension after every idle spell, ahead of the reply's (2 each).
    t.true(epochs >= REQUESTS && epochs <= REQUESTS + SLACK, `${epochs} checkpoints for ${REQUESTS} requests after idle spells`);
    c.close();
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

