/**
 * Failed logins per client address: at most LIMIT within WINDOW_MS, then the
 * address is refused (429, Retry-After) until its oldest failure leaves the
 * window. The address is the TCP peer's: behind a proxy every client shares
 * the proxy's address, which then limits them together (the safe direction).
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
    const times = this.#recent(address, now);
    if (times.length + (this.#inFlight.get(address) ?? 0) < this.limit) return 0;
    return times.length ? Math.max(1, Math.ceil((times[0] + this.windowMs - now) / 1000)) : 1;
  }

  /** An attempt starts (its password is being hashed): call `end` when it is decided. */
  begin(address: string): void {
    this.#inFlight.set(address, (this.#inFlight.get(address) ?? 0) + 1);
  }

  end(address: string): void {
    const n = (this.#inFlight.get(address) ?? 1) - 1;
    if (n > 0) this.#inFlight.set(address, n);
    else this.#inFlight.delete(address);
  }

  fail(address: string, now = Date.now()): void {
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
