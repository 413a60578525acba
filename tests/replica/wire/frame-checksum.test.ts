import zlib from 'node:zlib';
import test from 'ava';
import { crc32c } from '../../../checkpoint/format/crc32c.js';
import { crc32, crc32Js } from '../../../replica/wire/crc32.js';
import { FRAME_CHECKSUM_BYTES, openFrame, sealFrame } from '../../../replica/wire/frame-checksum.js';
import { refusalOf } from '../../../replica/wire/refused-message.js';
import { replicaService, REPLICATION_PROTOCOL_VERSION } from '../../../replica/wire/replication-wire.js';

test('crc32 and its portable fallback match the published check value and zlib, aligned or not, across calls', (t) => {
  const check = new TextEncoder().encode('123456789');
  t.is(crc32(check), 0xcbf43926);
  t.is(crc32Js(check), 0xcbf43926);
  const data = new Uint8Array(10_001).map((_, i) => (i * 131 + 7) & 0xff);
  const whole = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32?.(data) ?? crc32Js(data);
  for (const f of [crc32, crc32Js]) {
    t.is(f(data), whole);
    t.is(f(data.subarray(3)), f(data.slice(3)), 'unaligned views give the same result as copies');
    t.is(f(data.subarray(5000), f(data.subarray(0, 5000))), whole, 'continues from a previous value');
  }
});

test('a sealed frame opens to the same bytes; any flipped bit or a short frame is refused', (t) => {
  const body = new Uint8Array(300).map((_, i) => i & 0xff);
  const frame = sealFrame(body);
  t.is(frame.length, body.length + FRAME_CHECKSUM_BYTES);
  t.deepEqual(Buffer.from(openFrame(frame, 'Test')), Buffer.from(body));
  for (const at of [0, 150, 299, 300, 303]) {
    const bad = Buffer.from(frame);
    bad[at] ^= 0x10;
    t.throws(() => openFrame(bad, 'Test'), { code: 'WB_PROTOCOL', message: /checksum mismatch/ });
  }
  t.throws(() => openFrame(frame.subarray(0, 3), 'Test'), { code: 'WB_PROTOCOL', message: /too short/ });
});

test('a frame from a peer that seals with CRC-32C (protocol 2) is refused with an upgrade hint, not as corruption', (t) => {
  const body = replicaService.replicate.requestSerialize({ protocolVersion: 2, view: 1, primaryId: 'a', heartbeat: { sentAtMs: 1, epoch: 1 } } as never).subarray(0, -FRAME_CHECKSUM_BYTES);
  const old = Buffer.alloc(body.length + FRAME_CHECKSUM_BYTES);
  old.set(body, 0);
  old.writeUInt32LE(crc32c(body), body.length);
  t.throws(() => openFrame(old, 'PrimaryMessage'), { code: 'WB_PROTOCOL', message: /CRC-32C.*same waterbear version/ });
  // A handler reads such a message as refused, and answers the peer with the versions (protocol-version.test.ts).
  t.deepEqual(refusalOf(replicaService.replicate.requestDeserialize(old)), { peerVersion: null, peerId: null });
  // A reply nobody handles still throws (grpc-js passes the message on to the caller).
  t.throws(() => replicaService.join.responseDeserialize(old), { code: 'WB_PROTOCOL', message: /same waterbear version/ });
  t.is(REPLICATION_PROTOCOL_VERSION, 4);
});
