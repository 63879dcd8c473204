/**
 * Port allocation for apps registered without a `port`: a real bind test on
 * 127.0.0.1, because only the kernel knows whether a port is free (another
 * program, or an app of an earlier run still dying, may hold it).
 */
import net from 'node:net';

/** What binding a listener on 127.0.0.1:port right now says: null when it can, else the error's code. */
function bindError(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(null)));
  });
}

/** True if a listener can bind 127.0.0.1:port right now. */
export async function canBind(port: number): Promise<boolean> {
  return (await bindError(port)) === null;
}

/**
 * True if another listener holds 127.0.0.1:port right now (the bind fails with EADDRINUSE).
 * A port this process may not bind (EACCES: below 1024 without the privilege) is not
 * known to be taken: the app, which may have the privilege, says for itself.
 */
export async function portTaken(port: number): Promise<boolean> {
  return (await bindError(port)) === 'EADDRINUSE';
}

/** Hands out ports of a range, each at most once until released. */
export class PortAllocator {
  readonly #first: number;
  readonly #last: number;
  /** Ports handed out and not released: never given twice, even before an app uses them. */
  readonly #handedOut = new Set<number>();
  /** Where the next search starts, so a just-released port is not reused at once (TIME_WAIT, stray clients). */
  #cursor: number;

  /**
   * The first search starts at a point of the range spread by `seed` (the process id):
   * two Portholes on one machine (two cluster nodes, two users) that allocate at the same
   * moment would otherwise both test the range's first port before either app binds it, and
   * one app's traffic would reach the other's.
   */
  constructor([first, last]: readonly [number, number], seed = process.pid) {
    if (!Number.isInteger(first) || !Number.isInteger(last) || first < 1 || last > 65535 || first > last) {
      throw new RangeError(`portRange must be [first, last] within 1..65535, got [${first}, ${last}]`);
    }
    if (!Number.isSafeInteger(seed)) throw new RangeError(`the port search's seed must be a whole number, got ${seed}`);
    this.#first = first;
    this.#last = last;
    // Fibonacci hashing: nearby seeds (processes started one after another) land far apart.
    const at = (((seed * 0.6180339887498949) % 1) + 1) % 1;
    this.#cursor = first + Math.min(last - first, Math.floor(at * (last - first + 1)));
  }

  /** Where the next search starts. */
  next(): number {
    return this.#cursor;
  }

  /** Makes a handed-out port allocatable again (its app was removed or given another port). */
  release(port: number): void {
    this.#handedOut.delete(port);
  }

  /**
   * Picks a port that was not handed out, is not in `skip` (the apps'
   * explicit ports) and binds right now; rejects when the range is exhausted.
   */
  async alloc(skip: ReadonlySet<number> = new Set()): Promise<number> {
    const size = this.#last - this.#first + 1;
    for (let i = 0; i < size; i++) {
      const port = this.#cursor;
      this.#cursor = port === this.#last ? this.#first : port + 1;
      if (this.#handedOut.has(port) || skip.has(port)) continue;
      // Hand out before the await: a concurrent alloc() must not test the same port.
      this.#handedOut.add(port);
      if (await canBind(port)) return port;
      this.#handedOut.delete(port);
    }
    throw new Error(`no free port in ${this.#first}-${this.#last}: every port is in use or given to an app`);
  }
}
