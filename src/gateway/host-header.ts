/**
 * The Host header, parsed strictly: `host[:port]` as RFC 9110 §7.2 and
 * RFC 3986 §3.2.2 define it — a DNS name, an IPv4 address or a bracketed
 * IPv6 address, then an optional port of digits. Anything else (userinfo
 * such as `127.0.0.1:80@evil.com`, a path, spaces, percent-encoding, a zone
 * id) is not a Host, and is refused rather than guessed at: the admin guard
 * and the gateway's DNS-rebinding check both read names through this one
 * parser, so they cannot disagree on what a name is.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface HostHeader {
  /** Lowercase, without brackets (IPv6) and without a trailing dot. */
  readonly name: string;
  readonly port: number | undefined;
  /** 4 or 6 for an IP address, 0 for a name. */
  readonly ip: 0 | 4 | 6;
}

/** Labels of letters, digits, `-` and `_` (Docker and some intranets use `_`), each 1–63 long. */
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const PORT = /^\d{0,5}$/;

/**
 * Parsed values by their raw text. Every request reads its Host at least twice (routing, the
 * Host check, access control) and a gateway sees few distinct names, so the parse (two regex
 * passes and an IPv6 test) runs once per name rather than per read. Bounded: a client cycling
 * through names only refills it.
 */
const parsedHosts = new Map<string, HostHeader | null>();
const PARSED_HOSTS_MAX = 256;

/** Returns the parsed Host, or null when the value is not `host[:port]`. */
export function parseHostHeader(value: string): HostHeader | null {
  let parsed = parsedHosts.get(value);
  if (parsed !== undefined) return parsed;
  parsed = parseHost(value);
  if (parsedHosts.size >= PARSED_HOSTS_MAX) parsedHosts.clear();
  // Frozen: callers share one object per name.
  parsedHosts.set(value, parsed && Object.freeze(parsed));
  return parsed;
}

function parseHost(value: string): HostHeader | null {
  const text = value.trim().toLowerCase();
  if (!text || text.length > 261) return null;
  let host: string;
  let rest: string;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end === -1) return null;
    host = text.slice(1, end);
    rest = text.slice(end + 1);
    // Hex digits, colons and dots only: node's isIPv6 accepts a zone id (`fe80::1%25eth0`), which has no place in Host.
    if (!/^[0-9a-f:.]+$/.test(host) || !isIPv6(host)) return null;
  } else {
    const colon = text.indexOf(':');
    host = colon === -1 ? text : text.slice(0, colon);
    rest = colon === -1 ? '' : text.slice(colon);
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (host.length > 253 || !host.split('.').every((l) => LABEL.test(l))) return null;
  }
  let port: number | undefined;
  if (rest) {
    if (rest[0] !== ':' || !PORT.test(rest.slice(1))) return null;
    // `host:` (an empty port) is allowed by RFC 3986 and means the default port.
    if (rest.length > 1) {
      port = Number(rest.slice(1));
      if (port > 65535) return null;
    }
  }
  const ip = isIPv6(host) ? 6 : isIPv4(host) ? 4 : 0;
  return { name: host, port, ip };
}

/** True for an address of the loopback interface (`127.0.0.0/8`, `::1`, and IPv4-mapped `::ffff:127.x`). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/**
 * True for a name only this machine can mean: `localhost`, `*.localhost`
 * (RFC 6761 §6.3: browsers resolve them to loopback themselves), an address
 * in 127.0.0.0/8, `::1`.
 */
export function isLoopbackName(h: HostHeader, subdomains = true): boolean {
  if (h.ip === 4) return h.name.startsWith('127.');
  if (h.ip === 6) return h.name === '::1' || h.name.startsWith('::ffff:127.');
  return h.name === 'localhost' || (subdomains && h.name.endsWith('.localhost'));
}

/** `host[:port]` for a message, cut to `max` characters so a close reason stays within 123 bytes. */
export function shortHost(value: string, max = 40): string {
  const clean = value.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}
