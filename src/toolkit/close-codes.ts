/**
 * What a WebSocket close code means, in words a person debugging a proxy can
 * act on. Codes and ranges from RFC 6455 §7.4.1–§7.4.2 and the IANA
 * "WebSocket Close Code Number Registry" (1012–1015 were registered after the RFC).
 */

/** Meanings of the codes RFC 6455 and IANA define, 1000–1015. */
const DEFINED: Readonly<Record<number, string>> = Object.freeze({
  1000: 'normal closure',
  1001: 'going away: the server is shutting down or the client navigated away',
  1002: 'protocol error: the peer received a frame that breaks RFC 6455',
  1003: 'unsupported data: the peer cannot accept this type of message (text vs binary)',
  1004: 'reserved: no meaning defined',
  // §7.4.1: 1005 and 1006 are never sent on the wire; a library reports them.
  1005: 'no status received: the close frame carried no code',
  1006: 'abnormal closure: no close frame — the connection was cut by a proxy, a timeout or a crash',
  1007: 'invalid payload: a text message was not valid UTF-8, or data did not match its type',
  1008: 'policy violation: the peer refused the message or the connection (origin, auth, path…)',
  1009: 'message too big: the peer will not accept a message this large',
  1010: 'mandatory extension: the client needed an extension the server did not negotiate',
  1011: 'internal error: the server hit an unexpected condition',
  1012: 'service restart: the server is restarting; reconnect shortly',
  1013: 'try again later: the server is overloaded, or the app behind it is stopped or starting',
  1014: 'bad gateway: a proxy got no valid answer from the upstream',
  1015: 'TLS handshake failure: the TLS connection could not be set up',
});

/** Codes the IANA registry holds in 3000–3999 (first come, first served). */
const REGISTERED: Readonly<Record<number, string>> = Object.freeze({
  3000: 'unauthorized',
  3003: 'forbidden',
  3008: 'timeout',
});

/**
 * One line saying what `code` means, e.g.
 * `describeCloseCode(1006)` → `abnormal closure: no close frame — the connection was cut by a proxy, a timeout or a crash`.
 * Every integer gets an answer: unknown codes are described by their range.
 */
export function describeCloseCode(code: number): string {
  if (!Number.isInteger(code) || code < 0 || code > 65535) return 'not a close code';
  const defined = DEFINED[code];
  if (defined !== undefined) return defined;
  if (code < 1000) return 'invalid: codes below 1000 are not used';
  if (code < 2000) return 'reserved for future versions of the protocol';
  if (code < 3000) return 'reserved for WebSocket extensions';
  if (code < 4000) {
    const registered = REGISTERED[code];
    return registered === undefined
      ? 'registered range (3000–3999): defined by a library or framework, see its documentation'
      : `${registered} (registered range 3000–3999, used by libraries and frameworks)`;
  }
  if (code < 5000) return 'application-defined (4000–4999): the meaning is set by the application, see its documentation';
  return 'invalid: codes above 4999 are not defined';
}

/**
 * Whether an endpoint may put `code` in a close frame it sends (RFC 6455 §7.4.1:
 * 1004–1006 and 1015 are reserved; 1000–2999 outside the defined set is reserved).
 */
export function isSendableCloseCode(code: number): boolean {
  return (
    Number.isInteger(code) &&
    ((code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
      (code >= 3000 && code <= 4999))
  );
}
