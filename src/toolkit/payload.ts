/**
 * How the toolkit reads binary payloads from the command line and shows
 * received payloads, so `connect`, its `--pipe` mode and the logs agree.
 */

/**
 * Parses hex typed by a person: `00ff10ab`, `00 ff 10 ab`, `00:ff:10:ab` and a
 * leading `0x` are all accepted. Returns null when it is not whole bytes of hex.
 */
export function parseHex(text: string): Buffer | null {
  let s = text.trim().replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (s.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(s)) return null;
  s = s.toLowerCase();
  return Buffer.from(s, 'hex');
}

/**
 * One line per message for `connect --pipe`: a text message as itself, with CR
 * and LF written as `\r` and `\n` so a message never spans two lines; a binary
 * message as `0x` followed by lowercase hex (an empty one is `0x`).
 */
export function pipeLine(data: Buffer, isBinary: boolean): string {
  if (isBinary) return `0x${data.toString('hex')}`;
  return data.toString('utf8').replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

/** Hex shown to a person is cut here; `--pipe` never cuts. */
const HUMAN_HEX_LIMIT = 512;

/** A binary payload for a person: `4 bytes: 00ff10ab`, cut after 512 bytes. */
export function describeBinary(data: Buffer): string {
  const shown = data.subarray(0, HUMAN_HEX_LIMIT).toString('hex');
  const more = data.length > HUMAN_HEX_LIMIT ? `… (${data.length - HUMAN_HEX_LIMIT} more bytes)` : '';
  return `${data.length} byte${data.length === 1 ? '' : 's'}${data.length ? `: ${shown}${more}` : ''}`;
}

/**
 * A ping/pong/close payload for a person: quoted text when it is printable
 * UTF-8, hex otherwise, `(empty)` when there is none.
 */
export function describeControlPayload(data: Buffer): string {
  if (data.length === 0) return '(empty)';
  const text = data.toString('utf8');
  // U+FFFD means the bytes were not valid UTF-8.
  if (!text.includes('\uFFFD') && !/[\x00-\x08\x0b-\x1f\x7f]/.test(text)) return JSON.stringify(text);
  return `0x${data.toString('hex')}`;
}

/**
 * Bytes from an HTTP body, made safe to print on a terminal: control
 * characters other than tab and newline become `\xNN`.
 */
export function printableBody(data: Buffer): string {
  return data
    .toString('utf8')
    .replace(/\r\n/g, '\n')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
