import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { WaterbearError } from '../../libos-host/errors.js';
import type { TlsConfig } from '../config/cluster-config.js';
import { checkTlsFiles, type TlsFile } from './tls-files.js';

function read(path: string, field: string): TlsFile {
  const name = `${field} ${path}`;
  try {
    return { bytes: readFileSync(path), name };
  } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `cannot read the TLS file ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The cluster's TLS files, read and checked (PEM, the key belongs to the certificate): WB_CONFIG_INVALID naming a bad one. */
function readTls(tls: TlsConfig): { ca: Buffer; cert: Buffer; key: Buffer } {
  const ca = read(tls.ca, 'tls.ca');
  const cert = read(tls.cert, 'tls.cert');
  const key = read(tls.key, 'tls.key');
  checkTlsFiles(ca, { cert, key });
  return { ca: ca.bytes, cert: cert.bytes, key: key.bytes };
}

/**
 * Server credentials: mutual TLS when configured (a peer must present a certificate signed by
 * the cluster CA, or the handshake fails), plaintext otherwise (loopback, or allowPlaintext).
 * Throws WB_CONFIG_INVALID for a TLS file that cannot be read or is not what it should be.
 */
export function serverCredentials(tls: TlsConfig | null): grpc.ServerCredentials {
  if (tls === null) return grpc.ServerCredentials.createInsecure();
  const { ca, cert, key } = readTls(tls);
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], true);
}

/** Client credentials matching `serverCredentials` (and its errors). */
export function channelCredentials(tls: TlsConfig | null): grpc.ChannelCredentials {
  if (tls === null) return grpc.credentials.createInsecure();
  const { ca, cert, key } = readTls(tls);
  return grpc.credentials.createSsl(ca, key, cert);
}
