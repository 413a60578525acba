/**
 * Node warnings that say nothing an operator can act on, muted by the `waterbear` launcher.
 *
 * DEP0123: grpc-js passes the peer's host as the TLS ServerName even when it is an IP address
 * (members and etcd endpoints are usually written as IPs), and Node warns once per process that
 * RFC 6066 forbids SNI for IPs. Our gRPC servers ignore SNI, and the certificate is still checked
 * against the IP, so the warning (printed by every replica, witness and CLI using TLS) would only
 * alarm. Every other warning is printed as before.
 */
const MUTED_WARNING_CODES: ReadonlySet<string> = new Set(['DEP0123']);

type EmitWarning = NodeJS.Process['emitWarning'];

function warningCode(warning: unknown, rest: readonly unknown[]): string | undefined {
  if (warning instanceof Error) return (warning as NodeJS.ErrnoException).code;
  const [typeOrOptions, code] = rest;
  if (typeof typeOrOptions === 'object' && typeOrOptions !== null) return (typeOrOptions as { code?: string }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Wrap `proc.emitWarning` so MUTED_WARNING_CODES are dropped; idempotent enough to call once. */
export function muteKnownWarnings(proc: Pick<NodeJS.Process, 'emitWarning'> = process): void {
  const emit: EmitWarning = proc.emitWarning.bind(proc);
  const filtered = (warning: string | Error, ...rest: unknown[]): void => {
    const code = warningCode(warning, rest);
    if (code !== undefined && MUTED_WARNING_CODES.has(code)) return;
    (emit as (w: string | Error, ...r: unknown[]) => void)(warning, ...rest);
  };
  proc.emitWarning = filtered as EmitWarning;
}
