import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki { dir: string; ca: string; cert: string; key: string }

/**
 * A throwaway CA and one certificate for 127.0.0.1 (server and client use), made with the
 * machine's openssl. Two calls give two unrelated PKIs: one's certificate is "wrong" for the other.
 */
export function makeTestPki(name: string): TestPki {
  const dir = mkdtempSync(join(tmpdir(), `wb-pki-${name}-`));
  const f = (n: string): string => join(dir, n);
  const run = (...args: string[]): void => { execFileSync('openssl', args, { stdio: 'ignore' }); };
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}-ca`, '-keyout', f('ca-key.pem'), '-out', f('ca.pem'));
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}-node`, '-keyout', f('key.pem'), '-out', f('node.csr'));
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  run('x509', '-req', '-in', f('node.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('cert.pem'));
  return { dir, ca: f('ca.pem'), cert: f('cert.pem'), key: f('key.pem') };
}
