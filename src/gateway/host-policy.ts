/**
 * Which Host names the gateway answers under (issue 8, item 10).
 *
 * DNS rebinding: a page on evil.example has its name re-pointed at 127.0.0.1
 * and then talks to the gateway as "same origin" — its Host and Origin both
 * say evil.example, so an Origin check passes, and a VNC server without a
 * password on a laptop is one WebSocket away. The browser cannot lie about
 * Host, so the gateway checks it: on a loopback listener (decided by the
 * socket's local address, so a gateway embedded in another server is covered
 * too) only names that can mean this machine or that the operator declared
 * pass. On other addresses anyone can reach the gateway anyway, so Host is
 * only checked when `server_names` is set.
 */
import { hostname, networkInterfaces } from 'node:os';
import type { Config } from '../config/schema.js';
import { BadHostError, HostRefusedError, type PortholeError } from '../errors.js';
import { isLoopbackAddress, isLoopbackName, parseHostHeader, shortHost, type HostHeader } from './host-header.js';

/** The names in a list of `hosts` / `server_names` entries: exact names and `*.` suffixes, ports dropped. */
export class NameSet {
  private readonly exact = new Set<string>();
  private readonly suffixes: string[] = [];

  constructor(entries: Iterable<string>) {
    for (const e of entries) {
      const name = e.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
      if (name.startsWith('*.')) this.suffixes.push(name.slice(1));
      else this.exact.add(name);
    }
  }

  get size(): number {
    return this.exact.size + this.suffixes.length;
  }

  has(name: string): boolean {
    if (this.exact.has(name)) return true;
    for (const s of this.suffixes) if (name.length > s.length && name.endsWith(s)) return true;
    return false;
  }
}

/** The machine's own addresses, read again at most every 2 s when a Host is not among them (interfaces come and go). */
const machine = { addresses: new Set<string>(), readAt: -Infinity };

export function isMachineAddress(ip: string): boolean {
  if (ip === '0.0.0.0' || ip === '::') return true; // the unspecified address reaches this machine's listeners
  if (machine.addresses.has(ip)) return true;
  if (performance.now() - machine.readAt < 2000) return false;
  machine.readAt = performance.now();
  machine.addresses = new Set(
    Object.values(networkInterfaces())
      .flatMap((list) => list ?? [])
      .map((a) => a.address.toLowerCase()),
  );
  return machine.addresses.has(ip);
}

/**
 * The machine's own name: Debian maps it to 127.0.1.1 in /etc/hosts, so a
 * browser on the machine that opens http://HOSTNAME:PORT/ arrives on
 * loopback with it. A page elsewhere cannot be served under it.
 */
const MACHINE_NAME = hostname().toLowerCase();

/** How a refusal names whose names these are and what to do: the gateway's `server_names`, a bridge's `--server-name`. */
export interface HostRefusalWording {
  /** Whose names: "this gateway's". */
  whose: string;
  /** The fix, after a colon; a parenthesised tail is the first thing a close reason drops. */
  fix: string;
}

const GATEWAY_WORDING: HostRefusalWording = {
  whose: "this gateway's",
  fix: "add it to server_names (names other than loopback, this machine's addresses and the apps' host names are refused, against DNS rebinding)",
};

/**
 * The address a request reached: as a string, or its socket, read only when
 * the policy needs it (a getsockname per connection otherwise: ~3 % of a
 * WebSocket handshake's CPU).
 */
export type LocalAddress = string | undefined | { readonly localAddress?: string };

/** Each listening server's address, when it listens on one address rather than all of them. */
const boundTo = new WeakMap<object, string | null>();

/**
 * The address a connection reached. A connection's server (Node sets `socket.server`) that
 * listens on one address is asked once, not each connection (a getsockname per connection was
 * about 2 % of a WebSocket handshake's CPU); on a wildcard address, the socket is asked.
 */
function localOf(local: { readonly localAddress?: string }): string | undefined {
  const server = (local as { server?: { address?: () => unknown } }).server;
  if (server !== undefined && server !== null && typeof server.address === 'function') {
    let at = boundTo.get(server);
    if (at === undefined) {
      const addr = server.address() as { address?: string } | string | null;
      // Not listening (yet), or a unix socket: not remembered, the socket answers.
      if (addr === null || typeof addr !== 'object' || typeof addr.address !== 'string') return local.localAddress;
      at = addr.address === '0.0.0.0' || addr.address === '::' ? null : addr.address;
      boundTo.set(server, at);
    }
    if (at !== null) return at;
  }
  return local.localAddress;
}

export class HostPolicy {
  /** server_names and admin.hosts: the gateway's own names. */
  private readonly serverNames: NameSet;
  /** Every app's `hosts`. */
  private readonly appHosts: NameSet;
  private readonly appNames: ReadonlySet<string>;
  private readonly baseDomain: string | undefined;
  private readonly restricted: boolean;

  constructor(
    cfg: Pick<Config, 'server_names' | 'base_domain' | 'apps' | 'admin'>,
    private readonly wording: HostRefusalWording = GATEWAY_WORDING,
  ) {
    this.serverNames = new NameSet([...cfg.server_names, ...(cfg.admin?.hosts ?? [])]);
    this.restricted = cfg.server_names.length > 0;
    this.appHosts = new NameSet(cfg.apps.flatMap((a) => a.hosts ?? []));
    this.appNames = new Set(cfg.apps.map((a) => a.name));
    this.baseDomain = cfg.base_domain;
  }

  /**
   * Returns the refusal for a request's Host, or null when it may proceed.
   * No Host at all (HTTP/1.0) cannot come from a browser and passes.
   */
  check(hostHeader: string | undefined, local: LocalAddress): PortholeError | null {
    if (hostHeader === undefined || hostHeader === '') return null;
    const host = parseHostHeader(hostHeader);
    if (!host) return new BadHostError(`Host ${JSON.stringify(shortHost(hostHeader, 80))} is not host[:port]`);
    if (!this.restricted && !isLoopbackAddress(typeof local === 'object' ? localOf(local) : local)) return null;
    if (this.allows(host)) return null;
    return new HostRefusedError(`Host ${shortHost(hostHeader)} is not ${this.wording.whose}: ${this.wording.fix}`);
  }

  /** The policy of a server without apps (`porthole bridge`): loopback names, this machine's addresses and `names`. */
  static forNames(names: readonly string[], wording?: HostRefusalWording): HostPolicy {
    return new HostPolicy({ server_names: [...names], base_domain: undefined, apps: [], admin: { local_no_auth: false, hosts: [] } }, wording);
  }

  /** True for a name the gateway answers under. */
  allows(h: HostHeader): boolean {
    if (isLoopbackName(h) || h.name === MACHINE_NAME) return true;
    if (h.ip) return isMachineAddress(h.name);
    if (this.serverNames.has(h.name) || this.appHosts.has(h.name)) return true;
    const base = this.baseDomain;
    if (base && h.name.endsWith(`.${base}`)) return this.appNames.has(h.name.slice(0, -base.length - 1));
    return h.name === base;
  }
}
