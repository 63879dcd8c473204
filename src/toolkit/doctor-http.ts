/**
 * The WebSocket handshake sent by hand (RFC 6455 §4.1) and the answer read by
 * hand, byte for byte: the doctor shows exactly what came back — the status
 * line and headers as the server spelled them, the body a proxy served
 * instead of `101` — which `http.request` would normalise away.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';

/** RFC 6455 §1.3. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** A response head larger than this is not HTTP anyone should send. */
const MAX_HEAD_BYTES = 64 * 1024;
/** How much of a refusal's body is kept (enough to recognise an HTML page or an ngrok notice). */
export const MAX_BODY_BYTES = 16 * 1024;
/** A refusal whose body keeps streaming is cut after this long. */
const BODY_READ_MS = 2000;

export interface UpgradeRequest {
  /** The request head, one string per line, as written (no CRLF). */
  lines: string[];
  /** The Sec-WebSocket-Key sent. */
  key: string;
  bytes: Buffer;
}

export interface UpgradeRequestOptions {
  origin?: string;
  /** Extra headers, in order; one with the name of a default header replaces it. */
  headers?: readonly (readonly [string, string])[];
  subprotocols?: readonly string[];
}

/** Builds `GET path HTTP/1.1` with Upgrade, Connection, a random key and version 13. */
export function buildUpgradeRequest(url: URL, opts: UpgradeRequestOptions = {}): UpgradeRequest {
  const key = randomBytes(16).toString('base64');
  const fields: [string, string][] = [
    // WHATWG URL leaves a scheme's default port out of `host` already, as RFC 9110 §7.2 wants.
    ['Host', url.host],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', key],
    ['Sec-WebSocket-Version', '13'],
  ];
  if (opts.origin !== undefined) fields.push(['Origin', opts.origin]);
  if (opts.subprotocols?.length) fields.push(['Sec-WebSocket-Protocol', opts.subprotocols.join(', ')]);
  fields.push(['User-Agent', 'porthole-doctor']);
  for (const [name, value] of opts.headers ?? []) {
    const i = fields.findIndex(([n]) => n.toLowerCase() === name.toLowerCase());
    if (i >= 0) fields[i] = [fields[i][0], value];
    else fields.push([name, value]);
  }
  const lines = [`GET ${url.pathname || '/'}${url.search} HTTP/1.1`, ...fields.map(([n, v]) => `${n}: ${v}`)];
  const text = `${lines.join('\r\n')}\r\n\r\n`;
  // A Sec-WebSocket-Key given with -H is what the accept must be computed from.
  const sentKey = fields.find(([n]) => n.toLowerCase() === 'sec-websocket-key')![1];
  return { lines, key: sentKey, bytes: Buffer.from(text, 'latin1') };
}

/** The Sec-WebSocket-Accept a server must answer for `key` (RFC 6455 §4.2.2, step 5.4). */
export function expectedAccept(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

export interface UpgradeResponse {
  httpVersion: string;
  status: number;
  reason: string;
  /** Header fields in the order and spelling received. */
  headers: [string, string][];
  /** The head exactly as received, one string per line (status line first; 1xx heads before it). */
  headLines: string[];
  /** The body (chunked encoding removed), at most `MAX_BODY_BYTES`. */
  body: Buffer;
  bodyTruncated: boolean;
  /** After a 101: bytes that came right behind the head (the first WebSocket frames). */
  rest: Buffer;
  /** Milliseconds from sending the request to the end of the response head. */
  ms: number;
}

export type UpgradeFailure =
  | { kind: 'timeout'; received: Buffer }
  | { kind: 'closed'; how: 'fin' | 'reset'; errorCode?: string; received: Buffer }
  | { kind: 'not-http'; received: Buffer }
  | { kind: 'head-too-large'; received: Buffer };

/** All values of header `name` (case-insensitive), joined with ", ", or undefined. */
export function headerValue(res: Pick<UpgradeResponse, 'headers'>, name: string): string | undefined {
  const values = res.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
  return values.length ? values.join(', ') : undefined;
}

/**
 * Writes `request` on `socket` and reads the answer. After a 101 the socket is
 * left paused with no listeners of ours, ready for the WebSocket session.
 */
export function exchangeUpgrade(socket: Duplex, request: UpgradeRequest, timeoutMs: number): Promise<UpgradeResponse | UpgradeFailure> {
  return new Promise((resolve) => {
    const started = performance.now();
    let received = Buffer.alloc(0);
    let head: Omit<UpgradeResponse, 'body' | 'bodyTruncated' | 'rest'> | undefined;
    let bodyStart = 0;
    let settled = false;
    let bodyTimer: NodeJS.Timeout | undefined;
    const interim: string[] = [];

    const finish = (result: UpgradeResponse | UpgradeFailure) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(bodyTimer);
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onClose);
      resolve(result);
    };
    const finishBody = (ended: boolean) => {
      const { body, complete } = decodeBody(head!, received.subarray(bodyStart), ended);
      finish({ ...head!, body: body.subarray(0, MAX_BODY_BYTES), bodyTruncated: !complete || body.length > MAX_BODY_BYTES, rest: Buffer.alloc(0) });
    };

    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (head) {
        const { complete } = decodeBody(head, received.subarray(bodyStart), false);
        if (complete || received.length - bodyStart > MAX_BODY_BYTES * 2) finishBody(false);
        return;
      }
      parseHeads();
    };
    const parseHeads = () => {
      for (;;) {
        if (!/^HTTP\/\d/.test(received.subarray(0, 6).toString('latin1')) && received.length >= 6) return finish({ kind: 'not-http', received });
        const end = received.indexOf('\r\n\r\n', bodyStart);
        if (end < 0) {
          if (received.length - bodyStart > MAX_HEAD_BYTES) finish({ kind: 'head-too-large', received });
          return;
        }
        const lines = received.subarray(bodyStart, end).toString('latin1').split('\r\n');
        const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
        if (!m) return finish({ kind: 'not-http', received });
        const status = Number(m[2]);
        bodyStart = end + 4;
        if (status >= 100 && status < 200 && status !== 101) {
          // 100 Continue, 103 Early Hints: informational, the real answer follows (RFC 9110 §15.2).
          interim.push(...lines, '');
          continue;
        }
        const headers: [string, string][] = [];
        for (const line of lines.slice(1)) {
          const i = line.indexOf(':');
          if (i > 0) headers.push([line.slice(0, i), line.slice(i + 1).trim()]);
        }
        head = { httpVersion: m[1], status, reason: m[3] ?? '', headers, headLines: [...interim, ...lines], ms: performance.now() - started };
        if (status === 101) {
          return finish({ ...head, body: Buffer.alloc(0), bodyTruncated: false, rest: Buffer.from(received.subarray(bodyStart)) });
        }
        clearTimeout(timer);
        bodyTimer = setTimeout(() => finishBody(false), Math.min(BODY_READ_MS, timeoutMs));
        const { complete } = decodeBody(head, received.subarray(bodyStart), false);
        if (complete) finishBody(false);
        return;
      }
    };
    const onEnd = () => {
      if (head) finishBody(true);
      else finish({ kind: 'closed', how: 'fin', received });
    };
    const onError = (err: NodeJS.ErrnoException) => {
      if (head) finishBody(true);
      else finish({ kind: 'closed', how: 'reset', errorCode: err.code, received });
    };
    const onClose = () => onEnd();
    const timer = setTimeout(() => finish({ kind: 'timeout', received }), timeoutMs);

    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(request.bytes);
  });
}

/** Removes chunked encoding and says whether the body is complete (RFC 9112 §6.3, §7.1). */
function decodeBody(head: { status: number; headers: [string, string][] }, raw: Buffer, ended: boolean): { body: Buffer; complete: boolean } {
  if (head.status === 204 || head.status === 304) return { body: Buffer.alloc(0), complete: true };
  const te = headerValue(head, 'transfer-encoding');
  if (te && /chunked\s*$/i.test(te)) {
    const parts: Buffer[] = [];
    let off = 0;
    for (;;) {
      const eol = raw.indexOf('\r\n', off);
      if (eol < 0) return { body: Buffer.concat(parts), complete: false };
      const size = parseInt(raw.subarray(off, eol).toString('latin1'), 16);
      if (!Number.isFinite(size)) return { body: Buffer.concat(parts), complete: true };
      if (size === 0) return { body: Buffer.concat(parts), complete: true };
      const start = eol + 2;
      parts.push(raw.subarray(start, Math.min(start + size, raw.length)));
      if (raw.length < start + size + 2) return { body: Buffer.concat(parts), complete: false };
      off = start + size + 2;
    }
  }
  const cl = headerValue(head, 'content-length');
  if (cl !== undefined && /^\d+$/.test(cl)) {
    const n = Number(cl);
    return { body: raw.subarray(0, n), complete: raw.length >= n };
  }
  return { body: raw, complete: ended };
}
