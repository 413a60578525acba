import { isIP } from 'node:net';
import { WaterbearError } from '../errors.js';

/** A parsed listen address. */
export interface ListenAddress { host: string; port: number }

/**
 * Parse `host:port`, `[v6]:port` or a `tcp.srv:` URI of either. Throws WB_CONFIG_INVALID with
 * the accepted forms when the address is malformed (an invalid IPv4 or IPv6 literal included).
 */
export function parseListenUri(text: string): ListenAddress {
  const raw = text.startsWith('tcp.srv:') ? text.slice('tcp.srv:'.length) : text;
  const bad = (why: string): never => {
    throw new WaterbearError('WB_CONFIG_INVALID',
      `listen address "${text}" ${why}; use host:port such as 127.0.0.1:7000 or [::1]:7000 (port 0 picks a free port)`);
  };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) bad('is a URL: give host:port without a scheme');
  let host: string;
  let portText: string;
  if (raw.startsWith('[')) {
    const close = raw.indexOf(']');
    if (close < 0 || raw[close + 1] !== ':') bad('has an unterminated IPv6 bracket or no port');
    host = raw.slice(1, close);
    portText = raw.slice(close + 2);
    if (isIP(host) !== 6) bad('has an invalid IPv6 address');
  } else {
    const colon = raw.lastIndexOf(':');
    if (colon <= 0) bad('has no port');
    host = raw.slice(0, colon);
    portText = raw.slice(colon + 1);
    if (host.includes(':')) bad('looks like IPv6 without brackets');
    // The resolver would read "1.2.3" as 1.2.0.3 and "010" as octal, and "256.1.1.1" as a host name.
    if (/^[\d.]+$/.test(host) && isIP(host) !== 4) bad('has an invalid IPv4 address (four numbers from 0 to 255, no leading zeros)');
  }
  if (!/^\d{1,5}$/.test(portText)) bad('has an invalid port');
  const port = Number(portText);
  if (port > 65535) bad('has a port above 65535');
  return { host, port };
}
