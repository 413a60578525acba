/**
 * Checks of the TLS files a cluster file names (the cluster's `tls`, etcd's `coordinator.tls`),
 * made when they are read: a file that is not what it should be is a WB_CONFIG_INVALID naming it
 * at start, not an OpenSSL stack trace from inside grpc-js, or a CA that Node accepts silently
 * and every handshake then fails on.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { WaterbearError } from '../../libos-host/errors.js';

const PEM_CERTIFICATE_HEADER = '-----BEGIN CERTIFICATE-----';

/** The contents of TLS files, with what names each in messages (e.g. "tls.ca /etc/wb/ca.pem"). */
export interface TlsFile { bytes: Buffer; name: string }

function invalid(message: string, cause?: unknown): WaterbearError {
  return new WaterbearError('WB_CONFIG_INVALID', message, cause === undefined ? undefined : { cause });
}

/** The first certificate of a PEM file (a CA bundle or a chain may hold more). */
function pemCertificate(f: TlsFile): X509Certificate {
  const fix = 'give a PEM file (a "-----BEGIN CERTIFICATE-----" block; `openssl x509 -in FILE -noout -text` shows it)';
  if (!f.bytes.toString('latin1').includes(PEM_CERTIFICATE_HEADER)) throw invalid(`${f.name} is not a PEM certificate: ${fix}`);
  try {
    return new X509Certificate(f.bytes);
  } catch (err) {
    throw invalid(`${f.name} is not a valid PEM certificate (${(err as Error).message}): ${fix}`, err);
  }
}

function pemPrivateKey(f: TlsFile): KeyObject {
  try {
    return createPrivateKey(f.bytes);
  } catch (err) {
    throw invalid(`${f.name} is not a PEM private key (${(err as Error).message}): give the unencrypted PEM key of the certificate ` +
      '(a "-----BEGIN PRIVATE KEY-----" block)', err);
  }
}

/**
 * Check TLS material: `ca` and `cert` must be PEM certificates, `key` a PEM private key that
 * belongs to `cert` (the first certificate of its file). `cert` and `key` go together. Throws
 * WB_CONFIG_INVALID naming the file and what to do.
 */
export function checkTlsFiles(ca: TlsFile, identity: { cert: TlsFile; key: TlsFile } | null): void {
  pemCertificate(ca);
  if (identity === null) return;
  const cert = pemCertificate(identity.cert);
  if (!cert.checkPrivateKey(pemPrivateKey(identity.key))) {
    throw invalid(`${identity.key.name} is not the key of the certificate ${identity.cert.name}: give the key the certificate was issued for`);
  }
}
