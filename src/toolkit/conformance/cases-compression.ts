/**
 * Families 12 and 13 (opt-in, `--include 12,13`): permessage-deflate
 * (RFC 7692). Every case offers the extension, then sends one message 1000
 * times, compressed, each after the echo of the one before, at a size from
 * 16 bytes to 128 KiB, in one frame or with the compressed bytes cut into
 * frames (Autobahn's autoFragmentSize). The echoes must come back as sent.
 *
 * 12.x: five kinds of payload under the usual offer. Autobahn reads them from
 * files (a JSON document, a bitmap, Goethe's Faust, an HTML page, a PDF);
 * here they are generated to resemble them, the same bytes on every run.
 * 13.x: one payload under seven offers (context takeover, window sizes, and
 * three offers at once).
 */
import { CLEAN_NORMAL, binary, textBytes, type CaseSpec } from './case-types.js';
import type { DeflateOffer } from './deflate.js';
import { OP_BINARY, OP_TEXT } from './frame-writer.js';

/** [message size, fragment size (0: one frame)], Autobahn's 18 per sub-family. */
const PARAMS: readonly (readonly [number, number])[] = [
  [16, 0], [64, 0], [256, 0], [1024, 0], [4096, 0], [8192, 0], [16384, 0], [32768, 0], [65536, 0], [131072, 0],
  [8192, 256], [16384, 256], [32768, 256], [65536, 256], [131072, 256], [131072, 1024], [131072, 4096], [131072, 32768],
];
const MESSAGES = 1000;
/** 1000 round trips of up to 128 KiB each way, compressed on both sides. */
const CASE_TIMEOUT_MS = 120_000;

/** A small deterministic generator (xorshift32): the payloads are the same on every run. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

/** Text of at least `size` UTF-8 bytes cut to exactly `size` on a character boundary (padded with spaces). */
function textOf(make: (rand: () => number) => string, size: number, seed: number): Buffer {
  const rand = random(seed);
  let s = '';
  while (Buffer.byteLength(s) < size) s += make(rand);
  const b = Buffer.from(s, 'utf8').subarray(0, size);
  // A character cut in two at the end is dropped (and the room padded).
  let start = b.length - 1;
  while (start > 0 && (b[start] & 0xc0) === 0x80) start--;
  const lead = b[start];
  const length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  const end = start + length > b.length ? start : b.length;
  return Buffer.concat([b.subarray(0, end), Buffer.alloc(size - end, 0x20)]);
}

const WORDS = ['Habe', 'nun,', 'ach!', 'Philosophie,', 'Juristerei', 'und', 'Medizin,', 'leider', 'auch', 'Theologie', 'durchaus', 'studiert,', 'mit', 'heißem', 'Bemühn.', 'Da', 'steh', 'ich', 'nun,', 'ich', 'armer', 'Tor!', 'Und', 'bin', 'so', 'klug', 'als', 'wie', 'zuvor;', 'Größe', 'Übermut', 'Ärger', 'Öde'];

const json = (rand: () => number) => {
  const id = Math.floor(rand() * 1e6);
  return `{"id":${id},"name":"user-${id}","active":${rand() > 0.5},"score":${rand().toFixed(4)},"tags":["${WORDS[Math.floor(rand() * WORDS.length)]}","ws"],"city":"Zürich"},\n`;
};
const prose = (rand: () => number) => {
  const n = 6 + Math.floor(rand() * 10);
  const line: string[] = [];
  for (let i = 0; i < n; i++) line.push(WORDS[Math.floor(rand() * WORDS.length)]);
  return `${line.join(' ')}\n`;
};
const page = (rand: () => number) => `<tr class="row"><td><a href="/item/${Math.floor(rand() * 1e5)}">${prose(rand).trim()}</a></td><td>${rand().toFixed(3)}</td></tr>\n`;

/** A black-and-white bitmap: long runs of 0x00 and 0xff with some noise. */
function bitmap(size: number, seed: number): Buffer {
  const rand = random(seed);
  const out = Buffer.alloc(size);
  const head = Buffer.from('BM\x36\x04\x04\x00\x00\x00\x00\x00\x36\x04\x00\x00', 'latin1');
  head.copy(out);
  let at = Math.min(head.length, size);
  while (at < size) {
    const run = 1 + Math.floor(rand() * 40);
    out.fill(rand() < 0.5 ? 0x00 : 0xff, at, Math.min(size, at + run));
    at += run;
    if (rand() < 0.05 && at < size) out[at++] = Math.floor(rand() * 256);
  }
  return out;
}

/** A PDF-like file: text objects between streams of bytes that do not compress. */
function pdf(size: number, seed: number): Buffer {
  const rand = random(seed);
  const parts: Buffer[] = [Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let total = parts[0].length;
  for (let n = 1; total < size; n++) {
    const stream = Buffer.alloc(64 + Math.floor(rand() * 512));
    for (let i = 0; i < stream.length; i++) stream[i] = Math.floor(rand() * 256);
    const part = Buffer.concat([Buffer.from(`${n} 0 obj\n<< /Length ${stream.length} /Filter /FlateDecode >>\nstream\n`, 'latin1'), stream, Buffer.from('\nendstream\nendobj\n', 'latin1')]);
    parts.push(part);
    total += part.length;
  }
  return Buffer.concat(parts).subarray(0, size);
}

interface PayloadKind {
  what: string;
  isBinary: boolean;
  make(size: number): Buffer;
}

const KINDS: readonly PayloadKind[] = [
  { what: 'a JSON document (UTF-8 text)', isBinary: false, make: (size) => textOf(json, size, 121) },
  { what: 'a black-and-white bitmap (binary)', isBinary: true, make: (size) => bitmap(size, 122) },
  { what: 'German verse (UTF-8 text)', isBinary: false, make: (size) => textOf(prose, size, 123) },
  { what: 'an HTML page (UTF-8 text)', isBinary: false, make: (size) => textOf(page, size, 124) },
  { what: 'a PDF-like file (binary)', isBinary: true, make: (size) => pdf(size, 125) },
];

/** The usual offer: context takeover both ways, and this client takes any window size the server asks for. */
const DEFAULT_OFFER: DeflateOffer = { clientMaxWindowBits: true };

/** 13.1–13.7: what the client asks of the server's compressor (Autobahn's requestNoContextTakeover, requestMaxWindowBits). */
const OFFERS: readonly (readonly DeflateOffer[])[] = [
  [DEFAULT_OFFER],
  [{ ...DEFAULT_OFFER, serverNoContextTakeover: true }],
  [{ ...DEFAULT_OFFER, serverMaxWindowBits: 8 }],
  [{ ...DEFAULT_OFFER, serverMaxWindowBits: 15 }],
  [{ ...DEFAULT_OFFER, serverNoContextTakeover: true, serverMaxWindowBits: 8 }],
  [{ ...DEFAULT_OFFER, serverNoContextTakeover: true, serverMaxWindowBits: 15 }],
  [
    { ...DEFAULT_OFFER, serverNoContextTakeover: true, serverMaxWindowBits: 8 },
    { ...DEFAULT_OFFER, serverNoContextTakeover: true },
    DEFAULT_OFFER,
  ],
];

function offerText(offers: readonly DeflateOffer[]): string {
  const one = (o: DeflateOffer) => `(server_no_context_takeover: ${o.serverNoContextTakeover ? 'yes' : 'no'}, server_max_window_bits: ${o.serverMaxWindowBits ?? 'any'})`;
  return offers.length === 1 ? `the offer ${one(offers[0])}` : `${offers.length} offers in order ${offers.map(one).join(', ')}`;
}

function compressionCase(id: string, kind: PayloadKind, size: number, fragment: number, offers: readonly DeflateOffer[], offerWords: string): CaseSpec {
  const payload = kind.make(size);
  const echo = kind.isBinary ? binary(payload) : textBytes(payload);
  return {
    id,
    description: `Send ${MESSAGES} compressed messages of ${kind.what}, each of payload size ${size}, ${fragment ? `the compressed bytes cut into frames of ${fragment} octets` : 'each in one frame'}. Use ${offerWords}.`,
    expectation: `Receive ${MESSAGES} echoed messages, each with the payload as sent; a server that declines permessage-deflate is UNIMPLEMENTED.`,
    expected: { OK: new Array<typeof echo>(MESSAGES).fill(echo) },
    close: CLEAN_NORMAL,
    deflate: [...offers],
    bulky: true,
    minTimeoutMs: CASE_TIMEOUT_MS,
    run: async (ctx) => {
      for (let i = 0; i < MESSAGES; i++) {
        if (!(await ctx.sendCompressed(kind.isBinary ? OP_BINARY : OP_TEXT, payload, fragment))) return;
        // One at a time, as Autobahn: the next message once this one came back.
        if (!(await ctx.waitFor(() => ctx.received.length > i, CASE_TIMEOUT_MS)) || !ctx.open) return;
      }
    },
  };
}

export function compressionCases(): CaseSpec[] {
  const out: CaseSpec[] = [];
  KINDS.forEach((kind, k) => {
    PARAMS.forEach(([size, fragment], i) => out.push(compressionCase(`12.${k + 1}.${i + 1}`, kind, size, fragment, [DEFAULT_OFFER], 'the usual permessage-deflate offer')));
  });
  OFFERS.forEach((offers, o) => {
    PARAMS.forEach(([size, fragment], i) => out.push(compressionCase(`13.${o + 1}.${i + 1}`, KINDS[0], size, fragment, offers, offerText(offers))));
  });
  return out;
}
