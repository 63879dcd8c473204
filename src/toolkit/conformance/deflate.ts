/**
 * permessage-deflate (RFC 7692) for the conformance client, which writes its
 * own frames and must see every byte: the offer it sends, a strict check of
 * the server's answer (a reason string instead of a throw, so a bad answer
 * becomes a verdict), and a compressor/decompressor pair that honours the
 * negotiated windows and context takeover.
 *
 * Context takeover is kept with documented synchronous zlib calls: an LZ77
 * window is exactly the last 2^bits bytes of uncompressed data, so compressing
 * (or inflating) a message with those bytes as a preset dictionary
 * (`deflateRawSync`/`inflateRawSync` with `dictionary`) gives the same bytes
 * as one long-lived zlib stream would, without the undocumented `_processChunk`.
 */
import zlib from 'node:zlib';
import { InflateError, InflateLimitError } from '../../errors.js';

/** What the client offers. Omitted parameters are not sent. */
export interface DeflateOffer {
  /** The client will not keep its compression context between messages (§7.1.1.2). */
  clientNoContextTakeover?: boolean;
  /** Asks the server not to keep its context (§7.1.1.1). */
  serverNoContextTakeover?: boolean;
  /**
   * `true`: the parameter without a value (the server may then choose a window
   * for the client); a number 8–15: the largest window the client will use (§7.1.2.2).
   */
  clientMaxWindowBits?: boolean | number;
  /** Asks the server to use a window of at most 2^N bytes, N 8–15 (§7.1.2.1). */
  serverMaxWindowBits?: number;
}

/** What was agreed: the windows are 15 when the response does not limit them. */
export interface DeflateParams {
  clientNoContextTakeover: boolean;
  serverNoContextTakeover: boolean;
  clientMaxWindowBits: number;
  serverMaxWindowBits: number;
}

/**
 * The server's answer to the offer:
 * - `accepted`: the agreed parameters, the element as the server wrote it, and
 *   which offer it answers (0 when one offer was made);
 * - `declined`: the response has no permessage-deflate (a valid answer, RFC 7692 §5);
 * - `invalid`: the response breaks RFC 6455 §9.1 or RFC 7692 §7.1, and the client
 *   must fail the connection; `reason` says what was wrong.
 */
export type DeflateNegotiation =
  | { status: 'accepted'; params: DeflateParams; element: string; offerIndex: number }
  | { status: 'declined' }
  | { status: 'invalid'; reason: string };

const NAME = 'permessage-deflate';
const KNOWN = ['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits'];
/** The 4 bytes a sync flush ends with; removed before sending, put back before inflating (§7.2.1, §7.2.2). */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 7692 §7.1.2.1: "a decimal integer value without leading zeros between 8 to 15". */
const WINDOW_BITS = /^(8|9|1[0-5])$/;

function checkBits(bits: number | undefined, what: string): void {
  if (bits !== undefined && (!Number.isInteger(bits) || bits < 8 || bits > 15)) {
    throw new RangeError(`${what} must be an integer from 8 to 15, got ${bits}`);
  }
}

/**
 * The `Sec-WebSocket-Extensions` value for an offer, e.g.
 * `permessage-deflate; client_max_window_bits`, or for several offers in order
 * of preference (comma-separated, RFC 7692 §5).
 */
export function deflateOfferHeader(offer: DeflateOffer | readonly DeflateOffer[] = {}): string {
  if (Array.isArray(offer)) return offer.map((o) => deflateOfferHeader(o)).join(', ');
  return oneOffer(offer as DeflateOffer);
}

function oneOffer(offer: DeflateOffer): string {
  const parts = [NAME];
  if (offer.clientNoContextTakeover) parts.push('client_no_context_takeover');
  if (offer.serverNoContextTakeover) parts.push('server_no_context_takeover');
  if (typeof offer.clientMaxWindowBits === 'number') {
    checkBits(offer.clientMaxWindowBits, 'clientMaxWindowBits');
    parts.push(`client_max_window_bits=${offer.clientMaxWindowBits}`);
  } else if (offer.clientMaxWindowBits) {
    parts.push('client_max_window_bits');
  }
  if (offer.serverMaxWindowBits !== undefined) {
    checkBits(offer.serverMaxWindowBits, 'serverMaxWindowBits');
    parts.push(`server_max_window_bits=${offer.serverMaxWindowBits}`);
  }
  return parts.join('; ');
}

interface Element {
  name: string;
  params: { name: string; value: string | true }[];
  text: string;
}

/**
 * Splits an extension list (RFC 6455 §9.1: `ext; p; p=v, ext2`) into elements,
 * honouring quoted strings; returns a reason string when it is not well formed.
 */
function parseExtensionList(header: string): Element[] | string {
  const elements: Element[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && !' \t,;="'.includes(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skipSpace();
    if (i >= n) break;
    if (header[i] === ',') {
      i++; // empty list elements are allowed by the #rule
      continue;
    }
    const start = i;
    const name = readToken();
    if (!TOKEN.test(name)) return `the extension list is not well formed near "${header.slice(start, start + 20)}"`;
    const params: Element['params'] = [];
    skipSpace();
    while (header[i] === ';') {
      i++;
      skipSpace();
      const pname = readToken();
      if (!TOKEN.test(pname)) return `${name}: a parameter name is not a token near "${header.slice(i, i + 20)}"`;
      skipSpace();
      let value: string | true = true;
      if (header[i] === '=') {
        i++;
        skipSpace();
        if (header[i] === '"') {
          i++;
          let v = '';
          for (;;) {
            if (i >= n) return `${name}: the quoted value of ${pname} is not closed`;
            const ch = header[i++]!;
            if (ch === '"') break;
            if (ch === '\\' && i < n) v += header[i++];
            else v += ch;
          }
          // RFC 6455 §9.1: a quoted value must be a token once unquoted.
          if (!TOKEN.test(v)) return `${name}: the quoted value of ${pname} is not a token`;
          value = v;
        } else {
          value = readToken();
          if (!TOKEN.test(value)) return `${name}: ${pname}= has no value`;
        }
        skipSpace();
      }
      params.push({ name: pname, value });
    }
    if (i < n && header[i] !== ',') return `the extension list is not well formed near "${header.slice(i, i + 20)}"`;
    elements.push({ name, params, text: header.slice(start, i).trim() });
    i++;
  }
  return elements;
}

function bitsValue(name: string, value: string | true): number | string {
  if (value === true) return `${name} needs a value (8 to 15)`;
  if (!WINDOW_BITS.test(value)) return `${name}=${value} is not a number from 8 to 15 without leading zeros`;
  return Number(value);
}

/** The agreed parameters if `element` is a valid answer to `offer`, else the reason it is not. */
function checkAnswer(element: Element, offer: DeflateOffer): DeflateParams | string {
  const seen = new Set<string>();
  const params: DeflateParams = { clientNoContextTakeover: false, serverNoContextTakeover: false, clientMaxWindowBits: 15, serverMaxWindowBits: 15 };
  let serverBitsAnswered = false;
  for (const { name, value } of element.params) {
    const key = name.toLowerCase();
    if (!KNOWN.includes(key)) return `unknown parameter ${name} (RFC 7692 §7.1)`;
    if (seen.has(key)) return `parameter ${key} appears twice (RFC 7692 §7.1)`;
    seen.add(key);
    if (key === 'server_no_context_takeover' || key === 'client_no_context_takeover') {
      if (value !== true) return `${key} takes no value, got ${key}=${value} (RFC 7692 §7.1.1)`;
      // The server may add either one even if it was not offered (§7.1.1.1, §7.1.1.2).
      if (key === 'server_no_context_takeover') params.serverNoContextTakeover = true;
      else params.clientNoContextTakeover = true;
    } else if (key === 'server_max_window_bits') {
      const bits = bitsValue(key, value);
      if (typeof bits === 'string') return `${bits} (RFC 7692 §7.1.2.1)`;
      if (offer.serverMaxWindowBits !== undefined && bits > offer.serverMaxWindowBits) {
        return `server_max_window_bits=${bits} is larger than the ${offer.serverMaxWindowBits} offered (RFC 7692 §7.1.2.1)`;
      }
      // Without an offer, the server may still announce a smaller window of its own (§7.1.2.1).
      params.serverMaxWindowBits = bits;
      serverBitsAnswered = true;
    } else {
      if (offer.clientMaxWindowBits === undefined || offer.clientMaxWindowBits === false) {
        return 'client_max_window_bits answered but not offered (RFC 7692 §7.1.2.2)';
      }
      const bits = bitsValue(key, value);
      if (typeof bits === 'string') return `${bits} (RFC 7692 §7.1.2.2)`;
      if (typeof offer.clientMaxWindowBits === 'number' && bits > offer.clientMaxWindowBits) {
        return `client_max_window_bits=${bits} is larger than the ${offer.clientMaxWindowBits} offered (RFC 7692 §7.1.2.2)`;
      }
      params.clientMaxWindowBits = bits;
    }
  }
  // An accepting server must echo these two when they were offered (§7.1.1.1, §7.1.2.1).
  if (offer.serverNoContextTakeover && !params.serverNoContextTakeover) {
    return 'server_no_context_takeover was offered; the response accepts the offer without it (RFC 7692 §7.1.1.1)';
  }
  if (offer.serverMaxWindowBits !== undefined && !serverBitsAnswered) {
    return `server_max_window_bits=${offer.serverMaxWindowBits} was offered; the response accepts the offer without it (RFC 7692 §7.1.2.1)`;
  }
  // A numeric client offer binds the client even if the response does not repeat it.
  if (typeof offer.clientMaxWindowBits === 'number' && !seen.has('client_max_window_bits')) {
    params.clientMaxWindowBits = offer.clientMaxWindowBits;
  }
  return params;
}

/**
 * Checks the server's `Sec-WebSocket-Extensions` answer against what was
 * offered (RFC 7692 §5, §7.1). `header` is the raw value (or values, if the
 * header appeared more than once; undefined when absent). With several offers
 * (sent in that order, as `deflateOfferHeader` joins them), the answer must
 * fit one of them; `offerIndex` says which (the first that fits).
 */
export function parseDeflateResponse(header: string | readonly string[] | undefined, offers: DeflateOffer | readonly DeflateOffer[] = {}): DeflateNegotiation {
  const joined = Array.isArray(header) ? header.join(', ') : (header as string | undefined);
  if (joined === undefined || joined.trim() === '') return { status: 'declined' };
  const list = parseExtensionList(joined);
  if (typeof list === 'string') return { status: 'invalid', reason: list };
  if (list.length === 0) return { status: 'declined' };
  const others = list.filter((e) => e.name.toLowerCase() !== NAME);
  if (others.length > 0) {
    return { status: 'invalid', reason: `the server answered with an extension that was not offered: ${others.map((e) => e.name).join(', ')} (RFC 6455 §9.1)` };
  }
  // Several offers are alternatives: the server accepts at most one (RFC 7692 §5).
  if (list.length > 1) return { status: 'invalid', reason: `the server accepted ${NAME} ${list.length} times; one element may answer the offer` };
  const element = list[0]!;
  const all: readonly DeflateOffer[] = Array.isArray(offers) ? offers : [offers as DeflateOffer];
  const reasons: string[] = [];
  for (const [offerIndex, offer] of (all.length > 0 ? all : [{}]).entries()) {
    const r = checkAnswer(element, offer);
    if (typeof r !== 'string') return { status: 'accepted', params: r, element: element.text, offerIndex };
    reasons.push(r);
  }
  const distinct = [...new Set(reasons)];
  return {
    status: 'invalid',
    reason: distinct.length === 1 ? distinct[0]! : `the answer fits none of the ${all.length} offers: ${reasons.map((r, i) => `offer ${i + 1}: ${r}`).join('; ')}`,
  };
}

/**
 * Compresses what the client sends and inflates what the server sends, one
 * whole message at a time, with the agreed parameters.
 */
export class PerMessageDeflate {
  readonly params: Readonly<DeflateParams>;
  /** The last bytes the client compressed (its LZ77 window), when it keeps its context. */
  #sentWindow: Buffer = Buffer.alloc(0);
  /** The last bytes inflated from the server, when the server keeps its context. */
  #receivedWindow: Buffer = Buffer.alloc(0);

  constructor(params: DeflateParams) {
    checkBits(params.clientMaxWindowBits, 'clientMaxWindowBits');
    checkBits(params.serverMaxWindowBits, 'serverMaxWindowBits');
    this.params = Object.freeze({ ...params });
  }

  /** The payload of a compressed message (to send with RSV1 set on its first frame). */
  compress(payload: Buffer): Buffer {
    const bits = this.params.clientMaxWindowBits;
    const out = zlib.deflateRawSync(payload, {
      // zlib cannot build a raw deflater with a 256-byte window and Node asks
      // for 512 instead; zlib never emits a distance beyond 512 - 262 bytes
      // there, so the output still fits the server's 256-byte window.
      windowBits: Math.max(9, bits),
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
      ...(this.#sentWindow.length > 0 ? { dictionary: this.#sentWindow } : {}),
    });
    if (!this.params.clientNoContextTakeover) this.#sentWindow = keepTail(this.#sentWindow, payload, 1 << bits);
    return endsWithTrailer(out) ? out.subarray(0, out.length - TRAILER.length) : out;
  }

  /**
   * The message a compressed payload carries. Throws InflateLimitError when it
   * would exceed `maxBytes` (inflating stops there), InflateError when the data
   * is not valid deflate for the server's window.
   */
  decompress(payload: Buffer, maxBytes: number): Buffer {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`maxBytes must be a whole number of bytes, got ${maxBytes}`);
    const bits = this.params.serverMaxWindowBits;
    let out: Buffer;
    try {
      out = zlib.inflateRawSync(Buffer.concat([payload, TRAILER]), {
        windowBits: bits,
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
        maxOutputLength: Math.max(1, maxBytes),
        ...(this.#receivedWindow.length > 0 ? { dictionary: this.#receivedWindow } : {}),
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new InflateLimitError(`a compressed message of ${payload.length} bytes inflates to more than ${maxBytes} bytes: refused (decompression bomb?)`, { cause: err });
      }
      throw new InflateError(`a compressed message of ${payload.length} bytes is not valid deflate data for a ${bits}-bit window: ${(err as Error).message}`, { cause: err });
    }
    if (out.length > maxBytes) {
      throw new InflateLimitError(`a compressed message of ${payload.length} bytes inflates to ${out.length} bytes, more than ${maxBytes}: refused`);
    }
    if (!this.params.serverNoContextTakeover) this.#receivedWindow = keepTail(this.#receivedWindow, out, 1 << bits);
    return out;
  }
}

function endsWithTrailer(b: Buffer): boolean {
  return b.length >= 4 && b.subarray(b.length - 4).equals(TRAILER);
}

/** The last `size` bytes of `a` followed by `b`. */
function keepTail(a: Buffer, b: Buffer, size: number): Buffer {
  if (b.length >= size) return Buffer.from(b.subarray(b.length - size));
  const keep = Math.min(a.length, size - b.length);
  return Buffer.concat([a.subarray(a.length - keep), b]);
}
