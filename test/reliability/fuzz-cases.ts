/**
 * Seeded mutations of valid HTTP requests and WebSocket handshakes. The same
 * seed gives the same cases, so a failure found once can be replayed
 * (PORTHOLE_FUZZ_SEED=… with the case number from the failure).
 *
 * A case starts from a valid request (a GET, a POST with a sized or chunked
 * body, a HEAD or DELETE with a body, a pipelined pair, a handshake to a
 * proxied or a bridged app, the gateway's own paths), changes its structure
 * (method, target, version, headers, framing) and then, half of the time, its
 * bytes (flips, NULs, truncation, line endings, garbage).
 */

/** mulberry32: small, fast and good enough to pick mutations; never for secrets. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** The seed for this run: PORTHOLE_FUZZ_SEED (decimal or 0x hex) or a fixed default. */
export function fuzzSeed(fallback = 0x5eed8): number {
  const env = process.env.PORTHOLE_FUZZ_SEED;
  if (!env) return fallback;
  const n = Number(env);
  if (!Number.isInteger(n)) throw new Error(`PORTHOLE_FUZZ_SEED must be an integer, got ${JSON.stringify(env)}`);
  return n >>> 0;
}

export interface Target {
  /** `127.0.0.1:PORT` of the gateway. */
  host: string;
  /** Prefix of the logging HTTP app (`/up`). */
  http: string;
  /** Prefix of the proxied WebSocket app (`/ws`). */
  ws: string;
  /** Prefix of the bridge app (`/br`). */
  bridge: string;
}

export interface FuzzCase {
  id: number;
  /** Base request and the mutations applied, for the failure report. */
  kind: string[];
  /** Bytes to send, in separate writes. */
  chunks: Buffer[];
  /** Half-close after the last write (the client is done sending). */
  end: boolean;
}

interface Req {
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
  /** Bytes after the head, as they go on the wire (already framed). */
  body: Buffer;
  /** Another full request written right after this one (pipelining). */
  next?: Buffer;
  /** `c<id>`: in every path the case can make an app see, so a log line leads back to its case. */
  tag: string;
}

const te = (b: string) => Buffer.from(b, 'latin1');

function key(rng: Rng): string {
  return rng.bytes(16).toString('base64');
}

function chunked(parts: string[]): Buffer {
  return te(parts.map((p) => `${p.length.toString(16)}\r\n${p}\r\n`).join('') + '0\r\n\r\n');
}

function base(rng: Rng, t: Target, id: number): { name: string; req: Req } {
  const tag = `c${id}`;
  const h = (extra: [string, string][] = []): [string, string][] => [['Host', t.host], ['User-Agent', 'porthole-fuzz'], ['Accept', '*/*'], ...extra];
  const handshake = (prefix: string, extra: [string, string][] = []): Req => ({
    tag,
    method: 'GET',
    target: `${prefix}/${tag}`,
    version: 'HTTP/1.1',
    headers: h([['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', key(rng)], ['Sec-WebSocket-Version', '13'], ['Origin', `http://${t.host}`], ...extra]),
    body: Buffer.alloc(0),
  });
  switch (rng.int(11)) {
    case 0:
      return { name: 'get', req: { tag, method: 'GET', target: `${t.http}/${tag}?q=1`, version: 'HTTP/1.1', headers: h(), body: Buffer.alloc(0) } };
    case 1: {
      const body = te(`a=${tag}&b=${'x'.repeat(rng.int(64))}`);
      return { name: 'post-sized', req: { tag, method: 'POST', target: `${t.http}/${tag}`, version: 'HTTP/1.1', headers: h([['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', String(body.length)]]), body } };
    }
    case 2:
      return { name: 'post-chunked', req: { tag, method: 'POST', target: `${t.http}/${tag}`, version: 'HTTP/1.1', headers: h([['Transfer-Encoding', 'chunked']]), body: chunked(['hello', tag, 'x'.repeat(rng.int(40))]) } };
    case 3: {
      const method = rng.pick(['HEAD', 'DELETE', 'OPTIONS', 'GET']);
      const body = te(`GET /up/smuggled-${tag} HTTP/1.1\r\nHost: internal\r\n\r\n`);
      return { name: `${method.toLowerCase()}-with-body`, req: { tag, method, target: `${t.http}/${tag}`, version: 'HTTP/1.1', headers: h([['Content-Length', String(body.length)]]), body } };
    }
    case 4: {
      const second = te(`GET ${t.http}/${tag}-second HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`);
      return { name: 'pipelined', req: { tag, method: 'GET', target: `${t.http}/${tag}-first`, version: 'HTTP/1.1', headers: h(), body: Buffer.alloc(0), next: second } };
    }
    case 5:
    case 6:
      return { name: 'ws-handshake', req: handshake(t.ws, rng.chance(0.3) ? [['Sec-WebSocket-Protocol', 'chat, superchat']] : []) };
    case 7:
      return { name: 'bridge-handshake', req: handshake(t.bridge, [['Sec-WebSocket-Protocol', 'binary']]) };
    case 8:
      return { name: 'health', req: { tag, method: 'GET', target: '/_porthole/health', version: 'HTTP/1.1', headers: h(), body: Buffer.alloc(0) } };
    case 9:
      return { name: 'unrouted', req: { tag, method: rng.pick(['GET', 'POST']), target: `/nowhere/${tag}`, version: 'HTTP/1.1', headers: h(), body: Buffer.alloc(0) } };
    default: {
      const body = te('{"name":"x","port":1}');
      return { name: 'admin', req: { tag, method: 'POST', target: rng.pick(['/_porthole/api/apps', '/webapp']), version: 'HTTP/1.1', headers: h([['Content-Type', 'application/json'], ['Content-Length', String(body.length)]]), body } };
    }
  }
}

const ODD_METHODS = ['get', 'Get', 'BREW', 'PROPFIND', 'M-SEARCH', 'PRI', 'TRACE', 'G ET', 'GET\0', 'GE', 'POST ', '', 'A'.repeat(300), 'SEARCH', 'PURGE', 'LINK', 'ÄÖÜ', 'CONNECT'];
const BAD_VERSIONS = ['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/9.9', 'http/1.1', 'HTTP/1.1 ', 'HTTP/1.01', 'HTTP/11', 'HTTP/', 'HTTP/1.1\0', 'HTCPCP/1.0', 'HTTP/1.1.1', ''];
const FRAMING = ['Content-Length', 'Transfer-Encoding', 'Host', 'Upgrade', 'Connection', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Origin', 'Expect'];
const FORWARDING = ['X-Forwarded-For', 'X_Forwarded_For', 'x-forwarded-host', 'X-Real-IP', 'X_Real_IP', 'Forwarded', 'X-Client-IP'];

/** Structural mutations: each changes one part of the request. */
const STRUCT: Record<string, (rng: Rng, r: Req, t: Target) => void> = {
  'odd-method': (rng, r) => {
    r.method = rng.pick(ODD_METHODS);
  },
  connect: (rng, r, t) => {
    r.method = 'CONNECT';
    r.target = rng.pick([t.host, 'internal:22', '127.0.0.1:1', `[::1]:${t.host.split(':')[1]}`, 'example.com:443']);
  },
  'absolute-form': (rng, r, t) => {
    const host = rng.pick([t.host, 'evil.example', 'internal', '127.0.0.1:1']);
    r.target = `${rng.pick(['http', 'https', 'ws', 'HTTP', 'ftp'])}://${host}${r.target.startsWith('/') ? r.target : `/${r.target}`}`;
  },
  'odd-target': (rng, r) => {
    const p = r.target;
    r.target = rng.pick([
      '*',
      '',
      p.slice(1),
      `${p}#frag`,
      `${p} extra`,
      `${p}%00`,
      `${p}/../../_porthole/api/apps`,
      `/%2e%2e${p}`,
      `//${p}`,
      `${p}\\..\\x`,
      `${p}?${'a'.repeat(rng.range(1000, 20_000))}`,
      `${p}/\u00e9\u4e2d`,
      `${p}%`,
      `${p}%zz`,
      `${p}?token=secret&x=1`,
    ]);
  },
  'bad-version': (rng, r) => {
    r.version = rng.pick(BAD_VERSIONS);
  },
  'dup-header': (rng, r) => {
    const name = rng.pick(FRAMING);
    const existing = r.headers.find(([n]) => n.toLowerCase() === name.toLowerCase());
    const value = existing && rng.chance(0.5) ? existing[1] : rng.pick(['0', '5', 'chunked', 'websocket', 'evil.example', 'close', 'Upgrade', '13', 'AAAAAAAAAAAAAAAAAAAAAA==', '100-continue']);
    r.headers.splice(rng.int(r.headers.length + 1), 0, [rng.chance(0.3) ? name.toUpperCase() : name, value]);
  },
  'drop-header': (rng, r) => {
    if (r.headers.length) r.headers.splice(rng.int(r.headers.length), 1);
  },
  'huge-value': (rng, r) => {
    r.headers.push([rng.pick(['X-Big', 'Cookie', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions', 'Host']), 'v'.repeat(rng.pick([4096, 9000, 17_000, 70_000, 200_000]))]);
  },
  'many-headers': (rng, r) => {
    const n = rng.pick([120, 500, 2100, 5000]);
    for (let i = 0; i < n; i++) r.headers.push([`X-H${i}`, String(i)]);
  },
  'bad-header-name': (rng, r) => {
    r.headers.push([rng.pick(['X Y', ' X', 'X\x01', 'X(', '', ':authority', 'X\u00ff', 'X\t', 'Host ', 'Content-Length ']), 'v']);
  },
  'bad-header-value': (rng, r) => {
    const i = rng.int(r.headers.length);
    if (r.headers[i]) r.headers[i][1] += rng.pick(['\0', '\x7f', '\x01', '\r', '\u00ff', ' \t ', '\x1b[31m']);
  },
  'obs-fold': (rng, r) => {
    const i = rng.int(r.headers.length);
    if (r.headers[i]) r.headers[i][1] += `\r\n ${rng.pick(['folded', 'chunked', 'Content-Length: 0'])}`;
  },
  'space-before-colon': (rng, r) => {
    const i = rng.int(r.headers.length);
    if (r.headers[i]) r.headers[i][0] += rng.pick([' ', '\t']);
  },
  'no-colon': (rng, r) => {
    r.headers.splice(rng.int(r.headers.length + 1), 0, [rng.pick(['Garbage line', 'Transfer-Encoding chunked', 'X']), '\0']);
  },
  'connection-lists-framing': (rng, r) => {
    r.headers.push(['Connection', rng.pick(['Content-Length', 'Transfer-Encoding', 'Host', 'close, Content-Length', 'keep-alive, Transfer-Encoding, Host', 'X-Forwarded-For'])]);
  },
  'forwarding-spoof': (rng, r) => {
    r.headers.push([rng.pick(FORWARDING), rng.pick(['10.0.0.1', '127.0.0.1', 'for=1.2.3.4', 'evil.example'])]);
  },
  'content-length': (rng, r) => {
    r.headers = r.headers.filter(([n]) => n.toLowerCase() !== 'content-length');
    r.headers.push(['Content-Length', rng.pick(['-1', '+5', '0x10', '99999999999999999999', ' 5', '5 ', '5, 5', '5, 6', '1e3', '', 'abc', String(r.body.length + rng.range(1, 50)), String(Math.max(0, r.body.length - rng.range(1, 5))), '0'])]);
  },
  'transfer-encoding': (rng, r) => {
    r.headers.push(['Transfer-Encoding', rng.pick(['chunked', 'identity', 'chunked, gzip', 'gzip, chunked', 'xchunked', ' chunked', 'chunked ', 'Chunked', 'CHUNKED', 'chunked\t', 'chunked, chunked', '', 'compress'])]);
  },
  'cl-and-te': (rng, r) => {
    r.headers.push(['Content-Length', String(rng.range(0, 40))], ['Transfer-Encoding', rng.pick(['chunked', ' chunked', 'identity'])]);
    if (rng.chance(0.5)) r.headers.reverse();
  },
  'chunk-framing': (rng, r) => {
    r.headers = r.headers.filter(([n]) => n.toLowerCase() !== 'content-length' && n.toLowerCase() !== 'transfer-encoding');
    r.headers.push(['Transfer-Encoding', 'chunked']);
    r.body = te(
      rng.pick([
        'zz\r\nhello\r\n0\r\n\r\n',
        'ffffffffffffffffff\r\nx\r\n0\r\n\r\n',
        '5\r\nhello0\r\n\r\n',
        '5;ext="x\r\nhello\r\n0\r\n\r\n',
        '5\nhello\n0\n\n',
        '-5\r\nhello\r\n0\r\n\r\n',
        '0x5\r\nhello\r\n0\r\n\r\n',
        '5\r\nhello\r\n0\r\nX-Trailer: a\0\r\n\r\n',
        `0\r\n\r\nGET /up/smuggled-chunk-${r.tag} HTTP/1.1\r\nHost: internal\r\n\r\n`,
        '3\r\nhello\r\n0\r\n\r\n',
        '5 \r\nhello\r\n0\r\n\r\n',
        '5\r\nhello\r\n',
        '00000000000000000000005\r\nhello\r\n0\r\n\r\n',
        '\r\n\r\n',
      ]),
    );
  },
  'smuggle-after-body': (_rng, r) => {
    r.body = Buffer.concat([r.body, te(`GET /up/smuggled-tail-${r.tag} HTTP/1.1\r\nHost: internal\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n`)]);
  },
  'ws-key': (rng, r) => {
    r.headers = r.headers.filter(([n]) => n.toLowerCase() !== 'sec-websocket-key');
    const v = rng.pick(['', 'short', '!!!!notbase64!!!!!!!!!==', 'A'.repeat(100), key(rng).slice(0, 20), `${key(rng)}, ${key(rng)}`]);
    if (v || rng.chance(0.5)) r.headers.push(['Sec-WebSocket-Key', v]);
  },
  'ws-version': (rng, r) => {
    r.headers = r.headers.filter(([n]) => n.toLowerCase() !== 'sec-websocket-version');
    r.headers.push(['Sec-WebSocket-Version', rng.pick(['8', '14', '', '13, 8', '0x0d', '13 ', '-13', '99999999999'])]);
  },
  'ws-upgrade': (rng, r) => {
    r.headers = r.headers.filter(([n]) => n.toLowerCase() !== 'upgrade' && n.toLowerCase() !== 'connection');
    r.headers.push(['Upgrade', rng.pick(['WebSocket', 'websocket, h2c', 'h2c', 'websocket2', '', 'TLS/1.0'])]);
    r.headers.push(['Connection', rng.pick(['Upgrade', 'keep-alive, Upgrade', 'close', 'upgrade, HTTP2-Settings', 'Keep-Alive'])]);
    if (rng.chance(0.3)) r.headers.push(['HTTP2-Settings', 'AAMAAABkAARAAAAAAAIAAAAA']);
  },
  'ws-extras': (rng, r) => {
    r.headers.push([rng.pick(['Sec-WebSocket-Extensions', 'Sec-WebSocket-Protocol']), rng.pick(['permessage-deflate; client_max_window_bits=99', 'x-unknown', ', ,', 'a b', 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', '\u00e9'])]);
  },
  'data-after-head': (rng, r) => {
    r.body = Buffer.concat([r.body, rng.bytes(rng.range(1, 200))]);
  },
  'h2-preface': (_rng, r) => {
    r.method = 'PRI';
    r.target = '*';
    r.version = 'HTTP/2.0';
    r.headers = [];
    r.body = te('SM\r\n\r\n');
  },
  'expect-continue': (rng, r) => {
    r.headers.push(['Expect', rng.pick(['100-continue', '100-Continue', 'nothing', '200-ok'])]);
  },
};

/** Byte mutations of the serialized request. */
const BYTES: Record<string, (rng: Rng, b: Buffer) => Buffer> = {
  'flip-bits': (rng, b) => {
    const c = Buffer.from(b);
    for (let n = rng.range(1, 8); n > 0 && c.length; n--) c[rng.int(c.length)] ^= 1 << rng.int(8);
    return c;
  },
  'random-bytes': (rng, b) => {
    const c = Buffer.from(b);
    for (let n = rng.range(1, 8); n > 0 && c.length; n--) c[rng.int(c.length)] = rng.int(256);
    return c;
  },
  nul: (rng, b) => {
    const at = rng.int(b.length + 1);
    return Buffer.concat([b.subarray(0, at), Buffer.alloc(rng.range(1, 4)), b.subarray(at)]);
  },
  truncate: (rng, b) => b.subarray(0, rng.int(b.length)),
  'delete-range': (rng, b) => {
    const at = rng.int(b.length);
    return Buffer.concat([b.subarray(0, at), b.subarray(at + rng.range(1, 20))]);
  },
  'repeat-range': (rng, b) => {
    const at = rng.int(b.length);
    const piece = b.subarray(at, at + rng.range(1, 60));
    return Buffer.concat([b.subarray(0, at), piece, piece, b.subarray(at)]);
  },
  'bare-lf': (_rng, b) => te(b.toString('latin1').replace(/\r\n/g, '\n')),
  'bare-cr': (_rng, b) => te(b.toString('latin1').replace(/\r\n/g, '\r')),
  'mixed-eol': (rng, b) => te(b.toString('latin1').replace(/\r\n/g, () => rng.pick(['\r\n', '\n', '\r', '\n\r']))),
  'garbage-block': (rng, b) => {
    const at = rng.int(b.length + 1);
    return Buffer.concat([b.subarray(0, at), rng.bytes(rng.range(1, 300)), b.subarray(at)]);
  },
  'pure-garbage': (rng) => rng.bytes(rng.range(1, 2000)),
  'tls-hello': () => Buffer.from('16030100a5010000a10303' + '00'.repeat(60), 'hex'),
};

function serialize(r: Req): Buffer {
  const head = `${r.method} ${r.target}${r.version ? ` ${r.version}` : ''}\r\n${r.headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), r.body, r.next ?? Buffer.alloc(0)]);
}

const STRUCT_NAMES = Object.keys(STRUCT);
const BYTE_NAMES = Object.keys(BYTES);

/** Case `id` of a run: the same (seed, id) always gives the same bytes. */
export function makeCase(seed: number, id: number, t: Target): FuzzCase {
  const rng = new Rng((seed ^ Math.imul(id + 1, 0x9e3779b1)) >>> 0);
  const { name, req } = base(rng, t, id);
  const kind = [name];
  // Mostly one or two changes: enough to pass some checks and trip later ones.
  const structural = rng.pick([0, 1, 1, 1, 2, 2, 3]);
  for (let i = 0; i < structural; i++) {
    const m = rng.pick(STRUCT_NAMES);
    STRUCT[m](rng, req, t);
    kind.push(m);
  }
  let bytes = serialize(req);
  if (structural === 0 || rng.chance(0.4)) {
    for (let n = rng.range(1, 2); n > 0; n--) {
      const m = rng.pick(BYTE_NAMES);
      bytes = BYTES[m](rng, bytes);
      kind.push(m);
    }
  }
  // Split into up to three writes at random places: parsers must not care where packets end.
  const chunks: Buffer[] = [];
  let rest = bytes;
  for (let n = rng.int(3); n > 0 && rest.length > 1; n--) {
    const at = rng.range(1, rest.length - 1);
    chunks.push(rest.subarray(0, at));
    rest = rest.subarray(at);
  }
  chunks.push(rest);
  return { id, kind, chunks, end: rng.chance(0.5) };
}
