/**
 * What went wrong during a `porthole bench` run, counted by cause: the close
 * code a server sent (with its meaning), the HTTP status that refused a
 * handshake, the socket error code, or one of the bench's own codes below.
 */
import { STATUS_CODES } from 'node:http';
import { describeCloseCode } from './close-codes.js';
import { describeConnectError } from './handshake-failure.js';

/** An echo differed from what was sent: length, text/binary type, sequence number, connection id or content. */
export const PH_BENCH_MISMATCH = 'PH_BENCH_MISMATCH';
/** A message got no echo before the end of the run (counted per message, on connections still open). */
export const PH_BENCH_NO_ECHO = 'PH_BENCH_NO_ECHO';
/** The opening handshake got no answer within the connect timeout. */
export const PH_BENCH_HANDSHAKE_TIMEOUT = 'PH_BENCH_HANDSHAKE_TIMEOUT';
/** The run ended while this handshake was still in progress. */
export const PH_BENCH_HANDSHAKE_UNFINISHED = 'PH_BENCH_HANDSHAKE_UNFINISHED';
/** The server answered 101 but the handshake was invalid (bad Sec-WebSocket-Accept, subprotocol, extension). */
export const PH_BENCH_HANDSHAKE_INVALID = 'PH_BENCH_HANDSHAKE_INVALID';
/** ws refused to start the connection (a header value or subprotocol it cannot send). */
export const PH_BENCH_CLIENT_ERROR = 'PH_BENCH_CLIENT_ERROR';
/** The connection failed after it opened, with an error that has no code. */
export const PH_BENCH_SOCKET_ERROR = 'PH_BENCH_SOCKET_ERROR';

/**
 * Where a failure happened:
 * - `connect`: before any HTTP answer (refused, DNS, TLS, reset);
 * - `handshake`: the server answered the upgrade, but not with a valid 101;
 * - `close`: an open connection was closed by the server (or cut: 1006) before the run ended;
 * - `socket`: an open connection failed with a socket or protocol error;
 * - `echo`: an echo was wrong or missing.
 */
export type BenchErrorKind = 'connect' | 'handshake' | 'close' | 'socket' | 'echo';

export interface BenchError {
  kind: BenchErrorKind;
  /** A close code (number), `HTTP 403`, an errno code (`ECONNREFUSED`), a ws code or a `PH_BENCH_*` code. */
  code: number | string;
  count: number;
  /** What the code means, or the first error message seen for it. */
  description: string;
}

const DESCRIPTIONS: Readonly<Record<string, string>> = {
  [PH_BENCH_MISMATCH]: 'an echo differed from the message sent (length, type, sequence, connection or content)',
  [PH_BENCH_NO_ECHO]: 'a message got no echo before the end of the run',
  [PH_BENCH_HANDSHAKE_TIMEOUT]: 'the opening handshake got no answer within the connect timeout',
  [PH_BENCH_HANDSHAKE_UNFINISHED]: 'the run ended before this handshake completed',
};

export class BenchErrorTally {
  private readonly byKey = new Map<string, BenchError>();
  total = 0;

  add(kind: BenchErrorKind, code: number | string, description?: string, count = 1): void {
    if (count <= 0) return;
    const key = `${kind} ${code}`;
    const seen = this.byKey.get(key);
    this.total += count;
    if (seen) seen.count += count;
    else this.byKey.set(key, { kind, code, count, description: description ?? DESCRIPTIONS[code] ?? String(code) });
  }

  /** An open connection ended before the run did: by its socket error when it had one, else by close code. */
  addLost(closeCode: number, errorCode: string | undefined, errorMessage: string | undefined): void {
    if (errorCode !== undefined) this.add('socket', errorCode, errorMessage);
    else this.add('close', closeCode, describeCloseCode(closeCode));
  }

  /** A handshake refused with an HTTP status other than 101. */
  addStatus(status: number): void {
    const name = STATUS_CODES[status];
    this.add('handshake', `HTTP ${status}`, `the server answered the upgrade with ${status}${name ? ` ${name}` : ''} instead of 101`);
  }

  /** A handshake that failed before or while the server answered, from ws's error. */
  addConnectError(err: Error & { code?: string }, url: string): void {
    if (err.code) {
      const hint = describeConnectError(err, url).find((l) => l.startsWith('hint: '));
      this.add('connect', err.code, hint ? hint.slice('hint: '.length) : err.message);
    } else if (/timed out/i.test(err.message)) {
      this.add('handshake', PH_BENCH_HANDSHAKE_TIMEOUT);
    } else if (err.message === 'socket hang up') {
      // node:http's own wording for a connection closed before any answer; it sets ECONNRESET.
      this.add('connect', 'ECONNRESET', err.message);
    } else {
      this.add('handshake', PH_BENCH_HANDSHAKE_INVALID, err.message);
    }
  }

  /** Most frequent first. */
  list(): BenchError[] {
    return [...this.byKey.values()].sort((a, b) => b.count - a.count).map((e) => ({ ...e }));
  }
}
