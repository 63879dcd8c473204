/**
 * Raw TCP clients for the reliability suite: one case sends exact bytes and
 * reads whatever comes back; a pool runs many cases with a bounded number in
 * flight.
 */
import net from 'node:net';

export interface Exchange {
  /** Status of the first response head, or null when none came. */
  status: number | null;
  /** The first bytes received (latin1), for reports. */
  head: string;
  /** Bytes received in all. */
  bytes: number;
  /** The gateway closed the connection (rather than our idle cut). */
  closedByPeer: boolean;
  /** The connection could not be made (refused, reset before connect…). */
  connectError: string | null;
  ms: number;
  /** The client's port (to find a case from a socket the gateway still holds). */
  localPort: number;
}

export interface ExchangeOptions {
  /** Destroy the socket once nothing has moved for this long. */
  idleMs?: number;
  /** Destroy it after this long in any case. */
  maxMs?: number;
  /** Half-close after the last write. */
  end?: boolean;
}

/** Connects, writes each chunk in turn, reads until the peer closes or the connection idles. */
export function exchange(port: number, chunks: readonly Buffer[], opts: ExchangeOptions = {}): Promise<Exchange> {
  const idleMs = opts.idleMs ?? 300;
  const maxMs = opts.maxMs ?? 4000;
  const started = performance.now();
  return new Promise((ok) => {
    const socket = net.connect(port, '127.0.0.1');
    let received: Buffer[] = [];
    let bytes = 0;
    let closedByPeer = false;
    let connectError: string | null = null;
    let connected = false;
    let localPort = 0;
    let idle: NodeJS.Timeout | null = null;
    const cap = setTimeout(() => socket.destroy(), maxMs);
    const touch = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => socket.destroy(), idleMs);
    };
    socket.on('connect', () => {
      connected = true;
      localPort = socket.localPort ?? 0;
      let i = 0;
      const next = () => {
        touch();
        if (socket.destroyed) return;
        if (i < chunks.length) {
          socket.write(chunks[i++], next);
        } else if (opts.end) socket.end();
      };
      next();
    });
    socket.on('data', (d: Buffer) => {
      touch();
      if (bytes < 4096) received.push(d);
      bytes += d.length;
    });
    socket.on('end', () => (closedByPeer = true));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) connectError = err.code ?? err.message;
      else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') closedByPeer = true;
    });
    socket.on('close', () => {
      clearTimeout(cap);
      if (idle) clearTimeout(idle);
      const head = Buffer.concat(received).subarray(0, 4096).toString('latin1');
      received = [];
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      ok({ status: m ? Number(m[1]) : null, head: head.slice(0, 200), bytes, closedByPeer, connectError, ms: performance.now() - started, localPort });
    });
  });
}

/** Runs `count` jobs with at most `concurrency` in flight; results in job order. */
export async function pool<T>(count: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}
