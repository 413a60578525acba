import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { WaterbearError } from '../../libos-host/errors.js';
import type { TlsConfig } from '../config/cluster-config.js';

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `cannot read the TLS ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * Server credentials: mutual TLS when configured (a peer must present a certificate signed by
 * the cluster CA, or the handshake fails), plaintext otherwise (loopback, or allowPlaintext).
 */
export function serverCredentials(tls: TlsConfig | null): grpc.ServerCredentials {
  if (tls === null) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(read(tls.ca, 'CA'), [{ cert_chain: read(tls.cert, 'certificate'), private_key: read(tls.key, 'key') }], true);
}

/** Client credentials matching `serverCredentials`. */
export function channelCredentials(tls: TlsConfig | null): grpc.ChannelCredentials {
  if (tls === null) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(read(tls.ca, 'CA'), read(tls.key, 'key'), read(tls.cert, 'certificate'));
}
