import test from 'ava';
import protobuf from 'protobufjs';
import { decodeCheckpoint, encodeCheckpoint, encodeCheckpointBody } from '../../checkpoint/format/checkpoint-codec.js';
import { checkpointTypes } from '../../checkpoint/format/checkpoint-schema.js';
import { crc32c } from '../../checkpoint/format/crc32c.js';
import { REUSED_WRITER_MAX_BYTES, encodeExact, encodeReusing } from '../../checkpoint/format/reused-writer.js';
import { SyntheticVfs, syntheticCheckpoint } from './helpers/synthetic.js';

const vfs = new SyntheticVfs();
const fieldB = (type: protobuf.Type, bytes: Uint8Array): Buffer => Buffer.from((type.decode(bytes) as unknown as { b: Uint8Array }).b);
const cps = [1, 2, 3].map((e) => syntheticCheckpoint(e, vfs.step(e)));

test('checkpoints encoded one after another each keep their own bytes (the reused writer is copied out)', (t) => {
  const encoded = cps.map((cp) => encodeCheckpoint(cp));
  encodeCheckpoint(cps[0]); // and once more, over the same writer
  encoded.forEach((bytes, i) => {
    const back = decodeCheckpoint(bytes);
    t.is(back.epoch, cps[i].epoch);
    t.deepEqual(back.pages.map((p) => Buffer.from(p.data)), cps[i].pages.map((p) => Buffer.from(p.data)));
  });
});

test('the envelope is byte for byte what protobufjs encodes with fresh writers: the format did not change', (t) => {
  const { Envelope } = checkpointTypes();
  for (const cp of cps) {
    const body = encodeCheckpointBody(cp);
    const ours = encodeCheckpoint(cp);
    const formatVersion = (Envelope.decode(ours) as unknown as { formatVersion: number }).formatVersion;
    const reference = Envelope.encode({ formatVersion, compression: 0, bodyLength: body.length, bodyCrc32c: crc32c(body), body }).finish();
    t.is(Buffer.compare(Buffer.from(ours), Buffer.from(reference)), 0, `epoch ${cp.epoch}`);
    t.is(Buffer.compare(Buffer.from(body), Buffer.from(checkpointTypes().Checkpoint.encode(checkpointTypes().Checkpoint.decode(body)).finish())), 0);
  }
});

test('an encode inside another encode\'s callback gets its own writer', (t) => {
  const type = new protobuf.Type('M').add(new protobuf.Field('b', 1, 'bytes'));
  const outer = encodeReusing(type, { b: new Uint8Array(100).fill(1) }, (a) => {
    const inner = encodeExact(type, { b: new Uint8Array(300).fill(2) });
    return { a: Buffer.from(a), inner };
  });
  t.deepEqual(fieldB(type, outer.a), Buffer.alloc(100, 1));
  t.deepEqual(fieldB(type, outer.inner), Buffer.alloc(300, 2));
});

test('encodeExact returns exactly the message, kept across the next encode; a message larger than the kept size still encodes', (t) => {
  const type = new protobuf.Type('M').add(new protobuf.Field('b', 1, 'bytes'));
  const big = new Uint8Array(REUSED_WRITER_MAX_BYTES + 10).fill(7);
  const out = encodeExact(type, { b: big });
  const plain = type.encode({ b: big }).finish();
  t.is(out.length, plain.length);
  t.is(Buffer.compare(out, Buffer.from(plain)), 0);
  const small = encodeExact(type, { b: new Uint8Array([1, 2, 3]) });
  encodeExact(type, { b: new Uint8Array([9, 9, 9]) });
  t.deepEqual(fieldB(type, small), Buffer.from([1, 2, 3]));
});
