/**
 * The view watch loop with fake etcd streams (deterministic): where it resumes after a broken stream,
 * what it does after a compaction, and that order and de-duplication hold whatever etcd sends.
 */
import { EventEmitter } from 'node:events';
import test from 'ava';
import type { IDuplexStream, IWatchRequest, IWatchResponse } from 'etcd3';
import { decodeView, encodeView, type View } from '../../../../replica/coord/coordinator.js';
import { ViewWatchLoop } from '../../../../replica/coord/etcd/etcd-view-watch.js';
import { eventually } from './etcd-fixture.js';

class FakeStream extends EventEmitter {
  readonly requests: IWatchRequest[] = [];
  closed = false;
  write(req: IWatchRequest): void {
    this.requests.push(req);
  }
  end(): void {
    this.closed = true;
  }
  cancel(): void {
    this.closed = true;
  }
  get startRevision(): string {
    return String(this.requests[0]?.create_request?.start_revision);
  }
  /** Sends PUT events of views at the given revisions. */
  puts(...items: Array<[number, number]>): void {
    this.emit('data', {
      created: false,
      canceled: false,
      compact_revision: '0',
      events: items.map(([viewNumber, rev]) => ({
        type: 'Put',
        kv: { mod_revision: String(rev), value: Buffer.from(encodeView(v(viewNumber))) },
      })),
    } as unknown as IWatchResponse);
  }
}

const v = (n: number): View => ({ view: n, primary: `p${n}`, backups: [] });

function harness(current: { view: number; revision: number }) {
  const streams: FakeStream[] = [];
  const reports: Array<[string, Record<string, unknown>]> = [];
  const state = { ...current, readFails: 0 };
  const seen: number[] = [];
  let throwOn: number | null = null;
  const loop = new ViewWatchLoop(
    {
      readCurrent: async () => {
        if (state.readFails > 0) {
          state.readFails--;
          throw new Error('etcd is down');
        }
        return { view: state.view === 0 ? null : v(state.view), revision: BigInt(state.revision) };
      },
      openStream: async () => {
        const s = new FakeStream();
        streams.push(s);
        return s as unknown as IDuplexStream<IWatchRequest, IWatchResponse>;
      },
      decode: (value) => decodeView(value.toString()),
      key: Buffer.from('/k'),
      retryMinDelayMs: 1,
      retryMaxDelayMs: 4,
      report: (event, details) => reports.push([event, details]),
    },
    (view) => {
      seen.push(view.view);
      if (view.view === throwOn) throw new Error('callback bug');
    },
  );
  return { loop, streams, reports, state, seen, throwOn: (n: number) => { throwOn = n; } };
}

test('the current view comes first, then events from the read revision + 1; stale and repeated views are dropped', async (t) => {
  const h = harness({ view: 3, revision: 40 });
  h.loop.start();
  t.true(await eventually(() => h.streams.length === 1, 1_000));
  t.deepEqual(h.seen, [3]);
  t.is(h.streams[0].startRevision, '41');
  h.streams[0].puts([3, 40], [4, 41], [4, 41], [2, 42], [5, 43]);
  t.deepEqual(h.seen, [3, 4, 5]);
  h.loop.stop();
  t.true(h.streams[0].closed);
  h.streams[0].puts([6, 44]);
  t.deepEqual(h.seen, [3, 4, 5], 'nothing after stop');
});

test('after a broken stream it reads again and resumes from one past the last revision processed, replaying what it missed', async (t) => {
  const h = harness({ view: 1, revision: 10 });
  h.loop.start();
  t.true(await eventually(() => h.streams.length === 1, 1_000));
  h.streams[0].puts([2, 12]);
  // etcd dies; meanwhile views 3 and 4 are committed (revisions 15, 16); the first read fails.
  h.state.view = 4;
  h.state.revision = 16;
  h.state.readFails = 2;
  h.streams[0].emit('error', Object.assign(new Error('14 UNAVAILABLE'), { code: 14 }));
  t.true(await eventually(() => h.streams.length === 2, 1_000));
  t.is(h.streams[1].startRevision, '13', 'resumes at the last processed revision + 1, not at the read revision');
  t.deepEqual(h.seen, [1, 2], 'the newer view read is not delivered ahead of the replay');
  h.streams[1].puts([3, 15], [4, 16]);
  t.deepEqual(h.seen, [1, 2, 3, 4]);
  t.true(h.reports.filter(([e]) => e === 'watch-reconnect').length >= 3, 'the failed reads were retried');
  h.loop.stop();
});

test('when nothing newer exists after a reconnect, the quiet history is skipped', async (t) => {
  const h = harness({ view: 1, revision: 10 });
  h.loop.start();
  t.true(await eventually(() => h.streams.length === 1, 1_000));
  h.state.revision = 99; // other keys changed, the view did not
  h.streams[0].emit('end');
  t.true(await eventually(() => h.streams.length === 2, 1_000));
  t.is(h.streams[1].startRevision, '100');
  h.loop.stop();
});

test('after a compaction it delivers the latest view and says so', async (t) => {
  const h = harness({ view: 1, revision: 10 });
  h.loop.start();
  t.true(await eventually(() => h.streams.length === 1, 1_000));
  h.streams[0].emit('error', new Error('connection reset'));
  h.state.view = 7;
  h.state.revision = 70;
  t.true(await eventually(() => h.streams.length === 2, 1_000));
  t.is(h.streams[1].startRevision, '11');
  h.streams[1].emit('data', { created: true, canceled: true, compact_revision: '50', cancel_reason: 'compacted', events: [] } as unknown as IWatchResponse);
  t.true(await eventually(() => h.streams.length === 3, 1_000));
  t.deepEqual(h.seen, [1, 7]);
  t.is(h.streams[2].startRevision, '71');
  t.true(h.reports.some(([e, d]) => e === 'watch-compacted' && d.lastDelivered === 1 && d.current === 7));
  h.loop.stop();
});

test('a throwing callback is reported and does not stop the watch; deletes are ignored', async (t) => {
  const h = harness({ view: 0, revision: 5 });
  h.throwOn(2);
  h.loop.start();
  t.true(await eventually(() => h.streams.length === 1, 1_000));
  t.deepEqual(h.seen, [], 'no view yet: nothing delivered');
  h.streams[0].puts([1, 6], [2, 7]);
  h.streams[0].emit('data', { created: false, canceled: false, events: [{ type: 'Delete', kv: { mod_revision: '8', value: Buffer.alloc(0) } }] } as unknown as IWatchResponse);
  h.streams[0].emit('data', { created: false, canceled: false, events: [{ type: 'Put', kv: { mod_revision: '9', value: Buffer.from('junk') } }] } as unknown as IWatchResponse);
  h.streams[0].puts([3, 10]);
  t.deepEqual(h.seen, [1, 2, 3]);
  t.deepEqual(h.reports.map(([e]) => e), ['watch-callback-error', 'view-key-deleted', 'view-malformed']);
  t.is(h.streams.length, 1);
  h.loop.stop();
});
