import { isIPv6 } from 'node:net';

/**
 * Failed logins per client address: at most LIMIT within WINDOW_MS, then the
 * address is refused (429, Retry-After) until its oldest failure leaves the
 * window. The address is the TCP peer's: behind a proxy every client shares
 * the proxy's address, which then limits them together (the safe direction).
 * An IPv6 client is its /64 (a host is given a whole one and may pick a new
 * address per guess); an IPv4 one is the same client as `::ffff:a.b.c.d`.
 */
const LIMIT = 5;
const WINDOW_MS = 60_000;
/** Addresses tracked at most; the oldest go first (a flood of addresses cannot grow memory). */
const MAX_ADDRESSES = 10_000;

export class LoginRateLimit {
  readonly #failures = new Map<string, number[]>();
  /** Attempts being checked now: counted as failures until they end, or 100 parallel guesses would all pass the check. */
  readonly #inFlight = new Map<string, number>();
  constructor(
    readonly limit = LIMIT,
    readonly windowMs = WINDOW_MS,
  ) {}

  /** Seconds until `address` may try again, or 0 when it may now. */
  retryAfter(address: string, now = Date.now()): number {
    address = clientKey(address);
    const times = this.#recent(address, now);
    if (times.length + (this.#inFlight.get(address) ?? 0) < this.limit) return 0;
    return times.length ? Math.max(1, Math.ceil((times[0] + this.windowMs - now) / 1000)) : 1;
  }

  /** An attempt starts (its password is being hashed): call `end` when it is decided. */
  begin(address: string): void {
    address = clientKey(address);
    this.#inFlight.set(address, (this.#inFlight.get(address) ?? 0) + 1);
  }

  end(address: string): void {
    address = clientKey(address);
    const n = (this.#inFlight.get(address) ?? 1) - 1;
    if (n > 0) this.#inFlight.set(address, n);
    else this.#inFlight.delete(address);
  }

  fail(address: string, now = Date.now()): void {
    address = clientKey(address);
    const times = this.#recent(address, now);
    times.push(now);
    this.#failures.delete(address);
    this.#failures.set(address, times);
    while (this.#failures.size > MAX_ADDRESSES) this.#failures.delete(this.#failures.keys().next().value!);
  }

  #recent(address: string, now: number): number[] {
    const times = (this.#failures.get(address) ?? []).filter((t) => t > now - this.windowMs);
    if (times.length === 0) this.#failures.delete(address);
    return times;
  }
}

/** The key a client's failures are counted under: an IPv6 address's /64, an IPv4-mapped address's IPv4. */
export function clientKey(address: string): string {
  const a = address.toLowerCase().replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return mapped[1];
  if (!isIPv6(a)) return a;
  const cut = a.indexOf('::');
  const head = (cut === -1 ? a : a.slice(0, cut)).split(':').filter((g) => g !== '');
  const tail = cut === -1 ? [] : a.slice(cut + 2).split(':').filter((g) => g !== '');
  const tailGroups = tail.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const groups = cut === -1 ? head : [...head, ...Array<string>(Math.max(0, 8 - head.length - tailGroups)).fill('0'), ...tail];
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}
