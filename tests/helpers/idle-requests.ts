import type { ExecutionContext } from 'ava';
import type { RespClient } from '../../chaos/clients/resp-client.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A sporadic client: one SET to warm up, then `requests` SETs each followed by `idleMs` of
 * silence. Returns how much `count` (checkpoints taken) grew over those requests.
 */
export async function checkpointsForIdleSpacedSets(t: ExecutionContext, c: RespClient, requests: number, idleMs: number, count: () => number): Promise<number> {
  t.is(await c.call('SET', 'k', 'warm'), 'OK'); // the accept's own checkpoint ends here or at its interval
  await sleep(idleMs);
  const before = count();
  for (let i = 0; i < requests; i++) {
    t.is(await c.call('SET', 'k', `v${i}`), 'OK');
    await sleep(idleMs);
  }
  return count() - before;
}
