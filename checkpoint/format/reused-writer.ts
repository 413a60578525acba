import protobuf from 'protobufjs';

/** A writer whose buffer grew beyond this is dropped after use rather than kept for the next encode. */
export const REUSED_WRITER_MAX_BYTES = 1024 * 1024;

let idle: protobuf.Writer | null = null;

/**
 * Encode `message` as `type` into a writer kept between calls, and return what `take` makes of
 * the bytes. `take` must copy whatever it keeps: the bytes are overwritten by the next encode.
 * Why: a fresh protobufjs writer grows by doubling and `finish` copies the result out, ~3x the
 * message in new ArrayBuffers per encode; a primary encoding a few hundred ~60 KB checkpoints a
 * second (and again for the wire) allocated ~650 KB of them per epoch. Reusing the writer cut its
 * mark-compacts (2-20 ms pauses on the commit path) from ~75 to ~40 per benchmark run; the rest
 * came from V8's heap sizing (cli/v8-tuning.ts), not from these allocations alone.
 * Re-entrant: an encode inside `take` gets a writer of its own.
 */
export function encodeReusing<R>(type: protobuf.Type, message: object, take: (bytes: Uint8Array) => R): R {
  const w = idle ?? protobuf.Writer.create();
  idle = null;
  w.pos = 0;
  w.states = null;
  try {
    type.encode(message, w);
    return take(w.buf.subarray(0, w.pos));
  } finally {
    if (w.buf.length <= REUSED_WRITER_MAX_BYTES) idle = w;
  }
}

/** `encodeReusing` into a new buffer of exactly the message's size. */
export function encodeExact(type: protobuf.Type, message: object): Buffer {
  return encodeReusing(type, message, (bytes) => Buffer.from(bytes));
}
