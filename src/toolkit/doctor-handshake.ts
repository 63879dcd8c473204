/**
 * Steps 5 and 6 of `porthole doctor`: is the `101` one a browser accepts?
 * The checks are the client's duties in RFC 6455 §4.1 (page 19–20): a browser
 * that finds any of these wrong fails the connection, and the page only ever
 * sees 1006.
 */
import { expectedAccept, headerValue, MAX_BODY_BYTES, type UpgradeRequest, type UpgradeResponse } from './doctor-http.js';
import { formatMs, makeStep, type DoctorStep } from './doctor-step.js';
import { printableBody } from './payload.js';

/** Body lines shown under a refusal. */
const BODY_LINES = 25;
const BODY_CHARS = 2000;

/** The exchange as evidence lines: `> ` sent, `< ` received (head as received, then the body). */
export function wireLines(request: UpgradeRequest, res: UpgradeResponse | undefined): string[] {
  const lines = request.lines.map((l) => `> ${l}`);
  if (!res) return lines;
  lines.push(...res.headLines.map((l) => `< ${l}`));
  if (res.body.length) {
    const text = printableBody(res.body);
    const shown = text.slice(0, BODY_CHARS).replace(/\n$/, '').split('\n');
    lines.push('<');
    for (const l of shown.slice(0, BODY_LINES)) lines.push(`< ${l}`);
    const hidden = shown.length > BODY_LINES || text.length > BODY_CHARS || res.bodyTruncated;
    if (hidden) lines.push(`< … (body: ${res.body.length}${res.bodyTruncated ? `+ (read at most ${MAX_BODY_BYTES})` : ''} bytes)`);
  }
  return lines;
}

/** Step 5: Sec-WebSocket-Accept, Upgrade, Connection and extensions of a 101. */
export function checkAccept(request: UpgradeRequest, res: UpgradeResponse): DoctorStep {
  const want = expectedAccept(request.key);
  const got = headerValue(res, 'sec-websocket-accept');
  const upgrade = headerValue(res, 'upgrade');
  const connection = headerValue(res, 'connection');
  const extensions = headerValue(res, 'sec-websocket-extensions');
  const data = { expected: want, received: got ?? null };
  const why = 'A browser checks this and fails the connection when it is wrong: the page sees 1006 and no reason.';
  if (got === undefined)
    return makeStep('accept', 'fail', 'the 101 has no Sec-WebSocket-Accept header', {
      explanation: `RFC 6455 §4.2.2 requires it. ${why} Something answered 101 without implementing WebSocket — often a proxy that fakes the upgrade, or a hand-written server.`,
      fix: 'let a real WebSocket library (or a proxy that passes the upgrade through) answer the handshake',
      data,
    });
  if (got !== want)
    return makeStep('accept', 'fail', `Sec-WebSocket-Accept is ${got}, expected ${want} for the key sent`, {
      explanation:
        `The accept must be base64(SHA-1(key + 258EAFA5-E914-47DA-95CA-C5AB0DC85B11)) of the key in this request (RFC 6455 §4.2.2). ${why} ` +
        'A wrong value means the server computed it from another key: a proxy that rewrote Sec-WebSocket-Key, or a cache that replayed an old 101.',
      fix: 'make every proxy on the way forward Sec-WebSocket-Key untouched and never cache upgrades',
      data,
    });
  if (!upgrade || upgrade.toLowerCase() !== 'websocket')
    return makeStep('accept', 'fail', `the 101 says Upgrade: ${upgrade ?? '(missing)'}, not websocket`, {
      explanation: `RFC 6455 §4.1 (client step 2 of the response checks). ${why}`,
      fix: 'fix the server or proxy that writes the 101',
      data,
    });
  if (!connection || !connection.split(',').some((t) => t.trim().toLowerCase() === 'upgrade'))
    return makeStep('accept', 'fail', `the 101 says Connection: ${connection ?? '(missing)'}, without the upgrade token`, {
      explanation: `RFC 6455 §4.1 (client step 3 of the response checks). ${why} A proxy that rewrites Connection on responses causes this.`,
      fix: 'check every proxy on the way: one of them rewrites Connection on the answer',
      data,
    });
  if (extensions)
    return makeStep('accept', 'fail', `the server answered Sec-WebSocket-Extensions: ${extensions}, which the doctor did not offer`, {
      explanation: `A server may only accept extensions the client offered (RFC 6455 §4.1, §9.1). ${why}`,
      fix: 'fix the server’s extension negotiation',
      data,
    });
  return makeStep('accept', 'pass', `${got} matches the key sent; Upgrade: websocket, Connection: ${connection}`, { data });
}

/** Step 6: the subprotocol the server picked, against what was offered (RFC 6455 §4.1, §4.2.2). */
export function checkSubprotocol(offered: readonly string[], res: UpgradeResponse): DoctorStep {
  const selected = headerValue(res, 'sec-websocket-protocol');
  const data = { offered: [...offered], selected: selected ?? null };
  const browser = 'A browser fails such a handshake (Chrome: "Error during WebSocket handshake"), and the page sees 1006.';
  if (!offered.length) {
    if (selected === undefined) return makeStep('subprotocol', 'pass', 'none offered, none selected', { data });
    return makeStep('subprotocol', 'fail', `the server selected "${selected}" although none was offered`, {
      explanation: `A server must not answer a subprotocol the client did not ask for. ${browser}`,
      fix: `offer it (-s ${selected.split(',')[0].trim()}, new WebSocket(url, ['${selected.split(',')[0].trim()}'])), or make the server select none when none is offered`,
      data,
    });
  }
  if (selected === undefined)
    return makeStep('subprotocol', 'fail', `offered ${offered.join(', ')}, the server selected none`, {
      explanation:
        `The client asked for a subprotocol and the server answered without Sec-WebSocket-Protocol. ${browser} ` +
        'The server does not support any of the offered protocols, or a proxy dropped the header (either way).',
      fix: `make the server select one of: ${offered.join(', ')} (in ws: the handleProtocols option), or stop asking for one in the client`,
      data,
    });
  if (selected.includes(',') || !offered.includes(selected.trim()))
    return makeStep('subprotocol', 'fail', `offered ${offered.join(', ')}, the server selected "${selected}"`, {
      explanation: `The server must select exactly one of the offered subprotocols. ${browser}`,
      fix: 'fix the server’s subprotocol selection',
      data,
    });
  return makeStep('subprotocol', 'pass', `offered ${offered.join(', ')}, selected ${selected}`, { data });
}

/** The 101 summarised for the upgrade step's pass line. */
export function switchedLine(res: UpgradeResponse): string {
  return `HTTP/${res.httpVersion} 101${res.reason ? ` ${res.reason}` : ''} in ${formatMs(res.ms)}`;
}
