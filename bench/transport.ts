/**
 * What the replication transport itself costs, between two idle node processes on loopback:
 *   1. round trip of one message and a 60-byte answer (like a checkpoint and its ack), for 64 B
 *      and 30 KB: our Replicate stream on grpc-js against a raw TCP socket (the baseline);
 *   2. streaming 256 pre-copy-sized messages (1 MiB, 8 in flight, each answered) to a server
 *      bound with Node's default 64 KiB HTTP/2 receive window (the baseline) and with the window
 *      replicas use (RECEIVE_WINDOW_BYTES), with the receiver idle and busy 5 ms per message.
 * It isolates the transport from the cluster: docs/replication.md compares these numbers with the
 * per-hop times measured inside a replicated cluster.
 *
 *   npm run bench:transport [-- --out bench/results/transport.txt]
 */
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { bindWithReceiveWindow, RECEIVE_WINDOW_BYTES } from '../replica/wire/receive-window.js';
import { REPLICATION_PROTOCOL_VERSION, ReplicaClient, replicaService, type BackupMessage, type PrimaryMessage } from '../replica/wire/replication-wire.js';
import { benchArgs, OUT_OPTION } from './lib/args.js';
import { median } from './lib/stats.js';

const ROUND_TRIPS = 3000;
/** Round trips not counted (connection set-up, JIT warm-up). */
const WARM_UP_ROUND_TRIPS = 300;
const STREAM_MESSAGES = 256;
const STREAM_MESSAGE_BYTES = 1024 * 1024;
const STREAM_IN_FLIGHT = 8;
const BUSY_MS = 5;
const ANSWER_BYTES = 60;

interface Ports { plain: number; raised: number; tcp: number }

/** The receiving process: two Replicate servers (default and raised window) and a TCP echo. */
async function serve(): Promise<void> {
  let busyMs = 0;
  const handlers = {
    replicate: (call: grpc.ServerDuplexStream<PrimaryMessage, BackupMessage>) => {
      call.on('data', (m: PrimaryMessage) => {
        const until = performance.now() + busyMs;
        while (performance.now() < until) { /* a receiver busy with each message, as a backup storing it is */ }
        call.write({ protocolVersion: REPLICATION_PROTOCOL_VERSION, view: 1, backupId: 'b', ack: { epoch: m.checkpoint?.epoch ?? 0 } });
      });
      call.on('end', () => call.end());
    },
    join: (_c: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED }),
    status: (_c: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED }),
  };
  const plain = new grpc.Server({ 'grpc.max_receive_message_length': 2 * STREAM_MESSAGE_BYTES });
  plain.addService(replicaService, handlers);
  const raised = new grpc.Server({ 'grpc.max_receive_message_length': 2 * STREAM_MESSAGE_BYTES });
  raised.addService(replicaService, handlers);
  const creds = grpc.ServerCredentials.createInsecure();
  const plainPort = await new Promise<number>((resolve, reject) => plain.bindAsync('127.0.0.1:0', creds, (e, p) => (e === null ? resolve(p) : reject(e))));
  const { port: raisedPort, windowRaised } = await bindWithReceiveWindow(raised, '127.0.0.1:0', creds);
  if (!windowRaised) throw new Error('the receive window could not be raised');
  // Messages are length-prefixed (u32 LE); each whole message gets one answer.
  const tcp = net.createServer((s) => {
    s.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32LE(0)) {
        pending = pending.subarray(4 + pending.readUInt32LE(0));
        s.write(Buffer.alloc(ANSWER_BYTES));
      }
    });
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  process.on('message', (m: { busyMs: number }) => { busyMs = m.busyMs; process.send!('ok'); });
  process.send!({ plain: plainPort, raised: raisedPort, tcp: (tcp.address() as net.AddressInfo).port } satisfies Ports);
}

type Stream = grpc.ClientDuplexStream<PrimaryMessage, BackupMessage>;
const client = (port: number): grpc.Client & { replicate(): Stream } =>
  new ReplicaClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 2 * STREAM_MESSAGE_BYTES }) as unknown as grpc.Client & { replicate(): Stream };
const checkpoint = (epoch: number, data: Uint8Array): PrimaryMessage =>
  ({ protocolVersion: REPLICATION_PROTOCOL_VERSION, view: 1, primaryId: 'a', checkpoint: { epoch, full: false, chunkIndex: 0, chunkCount: 1, data } }) as PrimaryMessage;

/** Median round trip (ms) of `bytes` and its answer on the Replicate stream. */
async function grpcRoundTrip(port: number, bytes: number): Promise<number> {
  const c = client(port);
  const call = c.replicate();
  call.on('error', () => { /* the stream's end when the bench closes it */ });
  const data = new Uint8Array(bytes);
  const ms: number[] = [];
  await new Promise<void>((resolve) => {
    let i = 0;
    let sentAt = 0;
    const send = (): void => { sentAt = performance.now(); call.write(checkpoint(i, data)); };
    call.on('data', () => { ms.push(performance.now() - sentAt); if (++i === ROUND_TRIPS) resolve(); else send(); });
    send();
  });
  call.end();
  c.close();
  return median(ms.slice(WARM_UP_ROUND_TRIPS));
}

/** The same over a raw TCP socket (Nagle off, a 4-byte length prefix). */
async function tcpRoundTrip(port: number, bytes: number): Promise<number> {
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  await new Promise((resolve) => s.once('connect', resolve));
  const data = Buffer.alloc(4 + bytes);
  data.writeUInt32LE(bytes, 0);
  const ms: number[] = [];
  await new Promise<void>((resolve) => {
    let i = 0;
    let sentAt = 0;
    let got = 0;
    const send = (): void => { sentAt = performance.now(); s.write(data); };
    s.on('data', (d: Buffer) => {
      got += d.length;
      while (got >= ANSWER_BYTES) {
        got -= ANSWER_BYTES;
        ms.push(performance.now() - sentAt);
        if (++i === ROUND_TRIPS) { resolve(); return; }
        send();
      }
    });
    send();
  });
  s.destroy();
  return median(ms.slice(WARM_UP_ROUND_TRIPS));
}

/** MiB/s of STREAM_MESSAGES messages of 1 MiB, at most STREAM_IN_FLIGHT unanswered. */
async function streamRate(port: number): Promise<number> {
  const c = client(port);
  const call = c.replicate();
  call.on('error', () => { /* the stream's end when the bench closes it */ });
  const data = new Uint8Array(STREAM_MESSAGE_BYTES).fill(7);
  const start = performance.now();
  await new Promise<void>((resolve) => {
    let sent = 0;
    let answered = 0;
    const pump = (): void => { while (sent < STREAM_MESSAGES && sent - answered < STREAM_IN_FLIGHT) call.write(checkpoint(sent++, data)); };
    call.on('data', () => { if (++answered === STREAM_MESSAGES) resolve(); else pump(); });
    pump();
  });
  const ms = performance.now() - start;
  call.end();
  c.close();
  return (STREAM_MESSAGES * STREAM_MESSAGE_BYTES) / (1024 * 1024) / (ms / 1000);
}

async function main(): Promise<void> {
  const values = benchArgs('npm run bench:transport --', 'The replication stream alone between two idle processes: round trip against raw TCP; 1 MiB messages with the default and the raised HTTP/2 receive window.', { out: OUT_OPTION });
  const lines: string[] = [];
  const say = (s: string): void => { lines.push(s); console.log(s); };
  const child = fork(fileURLToPath(import.meta.url), ['serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const ports = await new Promise<Ports>((resolve) => child.once('message', (m) => resolve(m as Ports)));
    const setBusy = (busyMs: number): Promise<unknown> => new Promise((resolve) => { child.once('message', resolve); child.send({ busyMs }); });
    say(`# bench:transport  ${new Date().toISOString()}`);
    say(`# command: npm run bench:transport${values.out !== undefined ? ` -- --out ${values.out}` : ''}`);
    say(`# machine: ${cpus().length} cores, node ${process.version}; two node processes on loopback, both otherwise idle`);
    say('');
    say(`## 1. Round trip: a message and a ${ANSWER_BYTES}-byte answer (median of ${ROUND_TRIPS - WARM_UP_ROUND_TRIPS}, after ${WARM_UP_ROUND_TRIPS} not counted)`);
    say('# grpc-js = our Replicate stream (protobuf, CRC-32 frame, HTTP/2), baseline = raw TCP socket, Nagle off');
    say(`${'message'.padStart(8)} ${'raw TCP ms'.padStart(10)} ${'grpc-js ms'.padStart(10)} ${'x TCP'.padStart(6)}`);
    for (const bytes of [64, 30_000]) {
      const tcp = await tcpRoundTrip(ports.tcp, bytes);
      const g = await grpcRoundTrip(ports.raised, bytes);
      say(`${`${bytes} B`.padStart(8)} ${tcp.toFixed(3).padStart(10)} ${g.toFixed(3).padStart(10)} ${`${(g / tcp).toFixed(2)}x`.padStart(6)}`);
    }
    say('');
    say(`## 2. Streaming ${STREAM_MESSAGES} messages of 1 MiB (${STREAM_IN_FLIGHT} unanswered at most), by HTTP/2 receive window`);
    say(`# baseline = Node's default 64 KiB window; raised = ${RECEIVE_WINDOW_BYTES / (1024 * 1024)} MiB (replica/wire/receive-window.ts)`);
    say(`${'receiver'.padEnd(24)} ${'64 KiB MiB/s'.padStart(12)} ${'raised MiB/s'.padStart(12)} ${'x 64 KiB'.padStart(8)}`);
    for (const busy of [0, BUSY_MS]) {
      await setBusy(busy);
      const plain = await streamRate(ports.plain);
      const raised = await streamRate(ports.raised);
      const label = busy === 0 ? 'idle' : `busy ${busy} ms per message`;
      say(`${label.padEnd(24)} ${plain.toFixed(0).padStart(12)} ${raised.toFixed(0).padStart(12)} ${`${(raised / plain).toFixed(2)}x`.padStart(8)}`);
    }
  } finally {
    child.kill();
  }
  if (values.out !== undefined) writeFileSync(values.out, lines.join('\n') + '\n');
}

if (process.argv[2] === 'serve') await serve();
else await main();
