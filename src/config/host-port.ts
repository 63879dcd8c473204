/**
 * `host:port` strings, as the bridge's targets are written (`bridge:
 * 127.0.0.1:5900`, websockify's token files, `porthole bridge … HOST:PORT`).
 * One parser for the schema, the router and the CLI, so they cannot disagree.
 */

export interface HostPort {
  /** Host name or IP address, without brackets for IPv6. */
  readonly host: string;
  readonly port: number;
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;

/** Parses `host:port` or `[v6]:port`; returns the problem as a string when it is not one. */
export function parseHostPort(text: string): HostPort | string {
  const m = HOST_PORT.exec(text.trim());
  if (!m) return `${JSON.stringify(text)} is not HOST:PORT (such as "127.0.0.1:5900" or "[::1]:5900")`;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return `${JSON.stringify(text)}: the port must be from 1 to 65535`;
  const host = m[1] ?? m[2];
  if (m[2] !== undefined && (host.startsWith('-') || host.startsWith('.') || host.endsWith('-'))) return `${JSON.stringify(text)}: ${JSON.stringify(host)} is not a host name`;
  return { host, port };
}

/** `host:port` for messages, with brackets around an IPv6 address. */
export function formatHostPort(t: HostPort): string {
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}
