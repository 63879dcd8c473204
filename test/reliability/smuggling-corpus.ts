/**
 * Request-smuggling corpus (issue 8, item 1): raw bytes a client sends to the
 * gateway, each trying to make the upstream parse a request the gateway never
 * routed. Every smuggled request asks for `/smuggled` with `Host: internal`
 * and a forged `X-Forwarded-For`, so a leak is unmistakable in the upstream's
 * log. Requests the gateway should route ask for `/app/…` (the app is `app`).
 *
 * Families: `connection` (Connection listing framing headers), `body` (bodies
 * on GET/HEAD/DELETE/OPTIONS), `cl-te`, `te-cl`, `te-obfuscated`,
 * `cl-malformed`, `chunk` (chunk-size tricks), `pipeline`, `h2c`, `answered`
 * (requests the gateway answers itself), `line` (request-line and header-line
 * tricks).
 */

export interface SmuggleCase {
  name: string;
  family: string;
  /** Raw bytes sent on one client connection. */
  bytes: string;
}

const CRLF = '\r\n';

/** The request an attacker wants the upstream to see. */
export const SMUGGLED = `GET /smuggled HTTP/1.1${CRLF}Host: internal${CRLF}X-Forwarded-For: 10.0.0.1${CRLF}${CRLF}`;
/** A smuggled prefix that waits for the next request's bytes to complete it. */
const SMUGGLED_PREFIX = `GET /smuggled HTTP/1.1${CRLF}Host: internal${CRLF}X-Ignore: `;

/** One request: a request line, header lines, then the body as given. */
export function req(line: string, headers: string[], body = ''): string {
  return `${line}${CRLF}Host: 127.0.0.1${CRLF}${headers.map((h) => h + CRLF).join('')}${CRLF}${body}`;
}

const chunk = (data: string) => `${data.length.toString(16)}${CRLF}${data}${CRLF}`;
const chunked = (data: string) => `${chunk(data)}0${CRLF}${CRLF}`;
const len = (s: string) => `Content-Length: ${Buffer.byteLength(s)}`;
const follow = req('GET /app/after HTTP/1.1', []);

const cases: SmuggleCase[] = [];
const add = (family: string, name: string, bytes: string) => cases.push({ family, name, bytes });

// Connection listing framing headers: the issue's own finding, for each method.
for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS', 'POST', 'PUT', 'PATCH']) {
  add('connection', `${method} body, Connection: Content-Length`, req(`${method} /app/c HTTP/1.1`, ['Connection: Content-Length', len(SMUGGLED)], SMUGGLED));
}
add('connection', 'GET body, Connection: keep-alive, content-length', req('GET /app/c HTTP/1.1', ['Connection: keep-alive, content-length', len(SMUGGLED)], SMUGGLED));
add('connection', 'GET body, Connection: CONTENT-LENGTH upper case', req('GET /app/c HTTP/1.1', ['Connection: CONTENT-LENGTH', len(SMUGGLED)], SMUGGLED));
add('connection', 'GET body, Connection: ,content-length , with stray commas', req('GET /app/c HTTP/1.1', ['Connection: ,content-length ,', len(SMUGGLED)], SMUGGLED));
add('connection', 'GET body, two Connection headers, the second lists Content-Length', req('GET /app/c HTTP/1.1', ['Connection: keep-alive', len(SMUGGLED), 'Connection: Content-Length'], SMUGGLED));
add('connection', 'GET chunked, Connection: Transfer-Encoding', req('GET /app/c HTTP/1.1', ['Connection: Transfer-Encoding', 'Transfer-Encoding: chunked'], chunked(SMUGGLED)));
add('connection', 'POST chunked, Connection: transfer-encoding', req('POST /app/c HTTP/1.1', ['Connection: transfer-encoding', 'Transfer-Encoding: chunked'], chunked(SMUGGLED)));
add('connection', 'DELETE chunked, Connection: Transfer-Encoding, Content-Length', req('DELETE /app/c HTTP/1.1', ['Connection: Transfer-Encoding, Content-Length', 'Transfer-Encoding: chunked'], chunked(SMUGGLED)));
add('connection', 'GET, Connection: Host', req('GET /app/c HTTP/1.1', ['Connection: Host']));
add('connection', 'GET body, Connection: close, Content-Length', req('GET /app/c HTTP/1.1', ['Connection: close, Content-Length', len(SMUGGLED)], SMUGGLED));
add('connection', 'POST body, Connection: Content-Length then pipelined GET', req('POST /app/c HTTP/1.1', ['Connection: Content-Length', len(SMUGGLED)], SMUGGLED) + follow);
add('connection', 'GET, Connection: X-Forwarded-For with a forged X-Forwarded-For', req('GET /app/c HTTP/1.1', ['Connection: X-Forwarded-For', 'X-Forwarded-For: 10.0.0.1']));
add('connection', 'GET, Connection: Origin', req('GET /app/c HTTP/1.1', ['Connection: Origin', 'Origin: http://127.0.0.1']));
add('connection', 'OPTIONS body, Connection: Content-Length, Expect: 100-continue', req('OPTIONS /app/c HTTP/1.1', ['Connection: Content-Length', 'Expect: 100-continue', len(SMUGGLED)], SMUGGLED));

// Bodies on methods without body semantics, framed correctly: must reach the upstream framed.
for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']) {
  add('body', `${method} with a Content-Length body holding a request`, req(`${method} /app/b HTTP/1.1`, [len(SMUGGLED)], SMUGGLED));
  add('body', `${method} with a chunked body holding a request`, req(`${method} /app/b HTTP/1.1`, ['Transfer-Encoding: chunked'], chunked(SMUGGLED)));
}
add('body', 'GET with a smuggled prefix as its body, then a second GET', req('GET /app/b HTTP/1.1', [len(SMUGGLED_PREFIX)], SMUGGLED_PREFIX) + follow);
add('body', 'GET with a chunked smuggled prefix, then a second GET', req('GET /app/b HTTP/1.1', ['Transfer-Encoding: chunked'], chunked(SMUGGLED_PREFIX)) + follow);

// CL.TE and TE.CL: both framings on one request.
add('cl-te', 'Content-Length then Transfer-Encoding, body ends in a request', req('POST /app/x HTTP/1.1', [`Content-Length: ${3 + SMUGGLED.length + 5}`, 'Transfer-Encoding: chunked'], `0${CRLF}${CRLF}${SMUGGLED}`));
add('cl-te', 'Transfer-Encoding then Content-Length', req('POST /app/x HTTP/1.1', ['Transfer-Encoding: chunked', `Content-Length: ${5 + SMUGGLED.length}`], `0${CRLF}${CRLF}${SMUGGLED}`));
add('cl-te', 'GET with both framings', req('GET /app/x HTTP/1.1', ['Content-Length: 6', 'Transfer-Encoding: chunked'], `0${CRLF}${CRLF}G`));
add('cl-te', 'Content-Length 0 and chunked body', req('POST /app/x HTTP/1.1', ['Content-Length: 0', 'Transfer-Encoding: chunked'], chunked(SMUGGLED)));
add('te-cl', 'chunk holds a request, Content-Length covers only the size line', req('POST /app/x HTTP/1.1', ['Content-Length: 4', 'Transfer-Encoding: chunked'], `${chunk(SMUGGLED)}0${CRLF}${CRLF}`));
add('te-cl', 'chunk holds a request, Content-Length first', req('POST /app/x HTTP/1.1', ['Transfer-Encoding: chunked', 'Content-Length: 3'], `${chunk(SMUGGLED)}0${CRLF}${CRLF}`));
add('te-cl', 'obfuscated TE with a short Content-Length', req('POST /app/x HTTP/1.1', ['Content-Length: 4', 'Transfer-Encoding: xchunked'], `${chunk(SMUGGLED)}0${CRLF}${CRLF}`));

// Obfuscated Transfer-Encoding.
const teVariants: [string, string[]][] = [
  ['xchunked', ['Transfer-Encoding: xchunked']],
  ['chunked, identity', ['Transfer-Encoding: chunked, identity']],
  ['identity, chunked', ['Transfer-Encoding: identity, chunked']],
  ['gzip, chunked', ['Transfer-Encoding: gzip, chunked']],
  ['chunked, gzip', ['Transfer-Encoding: chunked, gzip']],
  ['identity', ['Transfer-Encoding: identity']],
  ['CHUNKED upper case', ['Transfer-Encoding: CHUNKED']],
  ['tab before value', ['Transfer-Encoding:\tchunked']],
  ['space before colon', ['Transfer-Encoding : chunked']],
  ['vertical tab in value', ['Transfer-Encoding: \x0bchunked']],
  ['trailing semicolon', ['Transfer-Encoding: chunked;']],
  ['quoted', ['Transfer-Encoding: "chunked"']],
  ['two headers, x then chunked', ['Transfer-Encoding: x', 'Transfer-Encoding: chunked']],
  ['two headers, chunked then x', ['Transfer-Encoding: chunked', 'Transfer-Encoding: x']],
  ['two chunked headers', ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked']],
  ['obs-fold onto another header', ['X-Pad: 1', ' Transfer-Encoding: chunked']],
  ['obs-folded value', ['Transfer-Encoding:', ' chunked']],
  ['underscore in the name', ['Transfer_Encoding: chunked']],
  ['empty value', ['Transfer-Encoding: ']],
  ['NUL after the value', ['Transfer-Encoding: chunked\x00']],
];
for (const [name, headers] of teVariants) {
  add('te-obfuscated', `Transfer-Encoding ${name}`, req('POST /app/t HTTP/1.1', headers, chunked(SMUGGLED)));
}
add('te-obfuscated', 'Transfer-Encoding xchunked beside Content-Length', req('POST /app/t HTTP/1.1', ['Transfer-Encoding: xchunked', len(chunked(SMUGGLED))], chunked(SMUGGLED)));
add('te-obfuscated', 'Transfer-Encoding on HTTP/1.0', req('POST /app/t HTTP/1.0', ['Transfer-Encoding: chunked', 'Connection: keep-alive'], chunked(SMUGGLED)));

// Duplicate and malformed Content-Length.
const clVariants: [string, string[]][] = [
  ['two equal', [len(SMUGGLED), len(SMUGGLED)]],
  ['two different', ['Content-Length: 0', len(SMUGGLED)]],
  ['two different, longer first', [len(SMUGGLED), 'Content-Length: 0']],
  ['list of equal values', [`Content-Length: ${SMUGGLED.length}, ${SMUGGLED.length}`]],
  ['list of different values', [`Content-Length: 0, ${SMUGGLED.length}`]],
  ['plus sign', [`Content-Length: +${SMUGGLED.length}`]],
  ['negative', ['Content-Length: -1']],
  ['hexadecimal', [`Content-Length: 0x${SMUGGLED.length.toString(16)}`]],
  ['leading zeros', [`Content-Length: 000${SMUGGLED.length}`]],
  ['space inside the number', [`Content-Length: 1 ${SMUGGLED.length}`]],
  ['space before colon', [`Content-Length : ${SMUGGLED.length}`]],
  ['underscore in the name', [`Content_Length: ${SMUGGLED.length}`]],
  ['huge', ['Content-Length: 99999999999999999999999']],
  ['empty', ['Content-Length: ']],
  ['letters', ['Content-Length: abc']],
  ['obs-folded', ['Content-Length:', ` ${SMUGGLED.length}`]],
];
for (const [name, headers] of clVariants) {
  add('cl-malformed', `Content-Length ${name}`, req('POST /app/l HTTP/1.1', headers, SMUGGLED));
}
add('cl-malformed', 'GET Content-Length 0 with bytes after', req('GET /app/l HTTP/1.1', ['Content-Length: 0'], SMUGGLED));

// Chunk-size tricks.
const chunkVariants: [string, string][] = [
  ['extension', `${SMUGGLED.length.toString(16)};ext=1${CRLF}${SMUGGLED}${CRLF}0${CRLF}${CRLF}`],
  ['quoted extension with CRLF inside', `${SMUGGLED.length.toString(16)};a="x${CRLF}0${CRLF}${CRLF}${SMUGGLED}"${CRLF}x${CRLF}0${CRLF}${CRLF}`],
  ['0x prefix', `0x${SMUGGLED.length.toString(16)}${CRLF}${SMUGGLED}${CRLF}0${CRLF}${CRLF}`],
  ['plus sign', `+${SMUGGLED.length.toString(16)}${CRLF}${SMUGGLED}${CRLF}0${CRLF}${CRLF}`],
  ['negative', `-1${CRLF}${SMUGGLED}${CRLF}0${CRLF}${CRLF}`],
  ['overflowing size', `ffffffffffffffffff${CRLF}${SMUGGLED}${CRLF}0${CRLF}${CRLF}`],
  ['leading space', ` ${SMUGGLED.length.toString(16)}${CRLF}${SMUGGLED}${CRLF}0${CRLF}${CRLF}`],
  ['trailing space', `${SMUGGLED.length.toString(16)} ${CRLF}${SMUGGLED}${CRLF}0${CRLF}${CRLF}`],
  ['LF only after the size', `${SMUGGLED.length.toString(16)}\n${SMUGGLED}${CRLF}0${CRLF}${CRLF}`],
  ['missing CRLF after the data', `${SMUGGLED.length.toString(16)}${CRLF}${SMUGGLED}0${CRLF}${CRLF}`],
  ['size too small', `3${CRLF}${SMUGGLED}${CRLF}0${CRLF}${CRLF}`],
  ['size larger than sent', `fff${CRLF}${SMUGGLED}${CRLF}0${CRLF}${CRLF}`],
  ['zero chunk then a request', `0${CRLF}${CRLF}${SMUGGLED}`],
  ['zero chunk with data', `0${CRLF}${SMUGGLED}${CRLF}${CRLF}`],
  ['trailer carrying Content-Length and a request', `0${CRLF}Content-Length: 5${CRLF}${CRLF}${SMUGGLED}`],
  ['trailer carrying Transfer-Encoding', `0${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}`],
  ['upper-case hex size', `${SMUGGLED.length.toString(16).toUpperCase()}${CRLF}${SMUGGLED}${CRLF}0${CRLF}${CRLF}`],
  ['many tiny chunks', `${[...SMUGGLED].map((c) => chunk(c)).join('')}0${CRLF}${CRLF}`],
  ['bare LF line ends throughout', `${SMUGGLED.length.toString(16)}\n${SMUGGLED}\n0\n\n`],
  ['last chunk without the final CRLF, then a request', `0${CRLF}${SMUGGLED}`],
];
for (const [name, body] of chunkVariants) {
  add('chunk', `chunk size ${name}`, req('POST /app/k HTTP/1.1', ['Transfer-Encoding: chunked'], body));
}

// Pipelining.
add('pipeline', 'two plain GETs', req('GET /app/p1 HTTP/1.1', []) + req('GET /app/p2 HTTP/1.1', []));
add('pipeline', 'three requests with bodies', req('POST /app/p1 HTTP/1.1', ['Content-Length: 3'], 'abc') + req('PUT /app/p2 HTTP/1.1', ['Transfer-Encoding: chunked'], chunked('xyz')) + req('GET /app/p3 HTTP/1.1', []));
add('pipeline', 'a request after Connection: close', req('GET /app/p1 HTTP/1.1', ['Connection: close']) + SMUGGLED);
add('pipeline', 'HTTP/1.0 without keep-alive, then a request', req('GET /app/p1 HTTP/1.0', []) + SMUGGLED);
add('pipeline', 'a request to an unrouted path, then one to the app', req('GET /nowhere HTTP/1.1', []) + req('GET /app/p2 HTTP/1.1', []));
add('pipeline', 'a routed request, then garbage', req('GET /app/p1 HTTP/1.1', []) + `NOT HTTP AT ALL${CRLF}${CRLF}`);
add('pipeline', 'a routed request then a partial one', req('GET /app/p1 HTTP/1.1', []) + SMUGGLED_PREFIX);
add('pipeline', 'ten pipelined GETs', Array.from({ length: 10 }, (_, i) => req(`GET /app/p${i} HTTP/1.1`, [])).join(''));

// h2c upgrade attempts and HTTP/2 prefaces.
add('h2c', 'GET with Upgrade: h2c', req('GET /app/h HTTP/1.1', ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA']));
add('h2c', 'h2c upgrade then the HTTP/2 preface', req('GET /app/h HTTP/1.1', ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA']) + `PRI * HTTP/2.0${CRLF}${CRLF}SM${CRLF}${CRLF}`);
add('h2c', 'h2c upgrade with a body holding a request', req('POST /app/h HTTP/1.1', ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA', len(SMUGGLED)], SMUGGLED));
add('h2c', 'h2c upgrade then a request', req('GET /app/h HTTP/1.1', ['Connection: Upgrade', 'Upgrade: h2c']) + SMUGGLED);
add('h2c', 'HTTP/2 prior-knowledge preface', `PRI * HTTP/2.0${CRLF}${CRLF}SM${CRLF}${CRLF}`);
add('h2c', 'Upgrade: websocket without a key, then a request', req('GET /app/h HTTP/1.1', ['Connection: Upgrade', 'Upgrade: websocket']) + SMUGGLED);
add('h2c', 'Upgrade: websocket on a POST with a body', req('POST /app/h HTTP/1.1', ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', len(SMUGGLED)], SMUGGLED));
add('h2c', 'WebSocket upgrade with a Content-Length body holding a request', req('GET /app/h HTTP/1.1', ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', len(SMUGGLED)], SMUGGLED));
add('h2c', 'WebSocket upgrade with a chunked body holding a request', req('GET /app/h HTTP/1.1', ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', 'Transfer-Encoding: chunked'], chunked(SMUGGLED)));
add('h2c', 'WebSocket upgrade, Connection: Upgrade, Content-Length', req('GET /app/h HTTP/1.1', ['Connection: Upgrade, Content-Length', 'Upgrade: websocket', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', len(SMUGGLED)], SMUGGLED));
add('h2c', 'Upgrade: h2c without Connection: Upgrade', req('GET /app/h HTTP/1.1', ['Upgrade: h2c']) + req('GET /app/h2 HTTP/1.1', []));

// Requests the gateway answers itself (redirect to the prefix, 404, health): the body must be
// skipped by its length, not parsed as a next request.
add('answered', 'redirect to the prefix, GET body listed in Connection', req('GET /app HTTP/1.1', ['Connection: Content-Length', len(SMUGGLED)], SMUGGLED) + follow);
add('answered', 'unrouted path, GET body listed in Connection', req('GET /nowhere HTTP/1.1', ['Connection: Content-Length', len(SMUGGLED)], SMUGGLED) + follow);
add('answered', 'health check, chunked GET body', req('GET /_porthole/health HTTP/1.1', ['Transfer-Encoding: chunked'], chunked(SMUGGLED)) + follow);
add('answered', 'unrouted path, smuggled prefix as the body, then a request to the app', req('POST /nowhere HTTP/1.1', [len(SMUGGLED_PREFIX)], SMUGGLED_PREFIX) + follow);

// Request-line and header-line tricks.
add('line', 'absolute-form target naming an internal host', `GET http://internal/smuggled HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}${CRLF}`);
add('line', 'bare LF line ends', `GET /app/n HTTP/1.1\nHost: 127.0.0.1\nContent-Length: ${SMUGGLED.length}\n\n${SMUGGLED}`);
add('line', 'space in a header name', req('GET /app/n HTTP/1.1', [`Content Length: ${SMUGGLED.length}`], SMUGGLED));
add('line', 'CR alone inside a header value', req('GET /app/n HTTP/1.1', [`X-A: 1\rContent-Length: ${SMUGGLED.length}`], SMUGGLED));
add('line', 'header line without a colon', req('GET /app/n HTTP/1.1', ['Content-Length 5'], SMUGGLED));
add('line', 'request line with two spaces', `GET  /app/n HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}${CRLF}${SMUGGLED}`);
add('line', 'HTTP/1.1 in the query', `GET /app/n?HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}${CRLF}${SMUGGLED}`);
add('line', 'request line without a version (HTTP/0.9) with headers and a body', `GET /app/n${CRLF}Host: 127.0.0.1${CRLF}${len(SMUGGLED)}${CRLF}${CRLF}${SMUGGLED}`);
add('line', 'HTTP/1.2 request line', req('GET /app/n HTTP/1.2', [len(SMUGGLED)], SMUGGLED));
add('line', 'HTTP/2.0 request line', req('GET /app/n HTTP/2.0', []) + SMUGGLED);
add('line', 'two Host headers', `GET /app/n HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}Host: internal${CRLF}${CRLF}`);
add('line', 'leading blank lines before the request', `${CRLF}${CRLF}${req('GET /app/n HTTP/1.1', [])}`);
add('line', 'Expect: 100-continue with a body holding a request', req('PUT /app/n HTTP/1.1', ['Expect: 100-continue', len(SMUGGLED)], SMUGGLED));

export const CORPUS: readonly SmuggleCase[] = cases;
