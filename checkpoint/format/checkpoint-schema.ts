/**
 * The protobuf types of proto/checkpoint.proto, loaded at run time with protobufjs.
 *
 * Why load the .proto instead of generating static code: the .proto stays the single source of
 * truth with no generated files to keep in sync, and protobufjs compiles per-type encoders and
 * decoders at load time, so encoding runs the same code as generated static modules would.
 * Loading costs a few milliseconds once per process.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** Path of proto/checkpoint.proto, found above this file (works from the sources and from dist/). */
export function checkpointProtoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'proto', 'checkpoint.proto');
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error('waterbear: cannot find proto/checkpoint.proto above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export interface CheckpointTypes {
  Envelope: protobuf.Type;
  Checkpoint: protobuf.Type;
}

let types: CheckpointTypes | null = null;

/** The checkpoint message types (loaded once). */
export function checkpointTypes(): CheckpointTypes {
  if (types === null) {
    const root = protobuf.loadSync(checkpointProtoPath());
    types = {
      Envelope: root.lookupType('waterbear.checkpoint.CheckpointEnvelope'),
      Checkpoint: root.lookupType('waterbear.checkpoint.Checkpoint'),
    };
  }
  return types;
}
