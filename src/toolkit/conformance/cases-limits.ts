/**
 * Family 9 (opt-in, `--include 9`): limits and performance — big messages
 * (64 KiB to 16 MiB), a 4 MiB message in fragments of 64 B to 4 MiB, a 1 MiB
 * message written in small chops, and 1000 round trips of small messages.
 * Sizes as Autobahn's. Durations are recorded; nothing is judged on speed.
 */
import { CLEAN_NORMAL, binary, textBytes, type CaseSpec } from './case-types.js';
import { OP_BINARY, OP_CONTINUATION, OP_TEXT, repeatTo } from './frame-writer.js';

const K = 1024;
const M = 1024 * 1024;
const MESSAGE_SIZES = [64 * K, 256 * K, M, 4 * M, 8 * M, 16 * M];
const FRAGMENT_SIZES = [64, 256, K, 4 * K, 16 * K, 64 * K, 256 * K, M, 4 * M];
const CHOP_SIZES = [64, 128, 256, 512, 1024, 2048];
const ROUND_TRIP_SIZES = [0, 16, 64, 256, 1024, 4096];
const ROUND_TRIPS = 1000;

function payloadFor(isBinary: boolean, size: number): Buffer {
  return isBinary ? Buffer.alloc(size, 0xfe) : repeatTo('BAsd7&jh23', size);
}

function human(n: number): string {
  return n >= M ? `${n / M}M` : n >= K ? `${n / K}k` : String(n);
}

function base(id: string, isBinary: boolean, payload: Buffer, description: string): Omit<CaseSpec, 'run'> {
  return {
    id,
    description,
    expectation: `Receive echo'ed ${isBinary ? 'binary' : 'text'} message (with payload as sent).`,
    expected: { OK: [isBinary ? binary(payload) : textBytes(payload)] },
    close: CLEAN_NORMAL,
    bulky: true,
    minTimeoutMs: 100_000,
  };
}

export function limitCases(): CaseSpec[] {
  const out: CaseSpec[] = [];
  for (const [sub, isBinary] of [[1, false], [2, true]] as const) {
    MESSAGE_SIZES.forEach((size, i) => {
      const payload = payloadFor(isBinary, size);
      out.push({
        ...base(`9.${sub}.${i + 1}`, isBinary, payload, `Send ${isBinary ? 'binary' : 'text'} message message with payload of length ${human(size)}.`),
        run: async (ctx) => {
          await ctx.send({ opcode: isBinary ? OP_BINARY : OP_TEXT, payload });
        },
      });
    });
  }
  for (const [sub, isBinary] of [[3, false], [4, true]] as const) {
    FRAGMENT_SIZES.forEach((frag, i) => {
      const payload = payloadFor(isBinary, 4 * M);
      out.push({
        ...base(`9.${sub}.${i + 1}`, isBinary, payload, `Send fragmented ${isBinary ? 'binary' : 'text'} message message with message payload of length 4M and fragment size ${human(frag)}.`),
        run: async (ctx) => {
          const frames = [];
          for (let at = 0; at < payload.length; at += frag) {
            frames.push({ opcode: at === 0 ? (isBinary ? OP_BINARY : OP_TEXT) : OP_CONTINUATION, fin: at + frag >= payload.length, payload: payload.subarray(at, at + frag) });
          }
          await ctx.send(frames);
        },
      });
    });
  }
  for (const [sub, isBinary] of [[5, false], [6, true]] as const) {
    CHOP_SIZES.forEach((chop, i) => {
      const payload = payloadFor(isBinary, M);
      out.push({
        ...base(`9.${sub}.${i + 1}`, isBinary, payload, `Send ${isBinary ? 'binary' : 'text'} message message with payload of length 1M. Sent out data in chops of ${chop} octets.`),
        run: async (ctx) => {
          await ctx.send({ opcode: isBinary ? OP_BINARY : OP_TEXT, payload }, { chop });
        },
      });
    });
  }
  for (const [sub, isBinary] of [[7, false], [8, true]] as const) {
    ROUND_TRIP_SIZES.forEach((size, i) => {
      const payload = isBinary ? Buffer.alloc(size, 0xfe) : Buffer.alloc(size, '*');
      const one = isBinary ? binary(payload) : textBytes(payload);
      out.push({
        id: `9.${sub}.${i + 1}`,
        description: `Send ${ROUND_TRIPS} ${isBinary ? 'binary' : 'text'} messages of payload size ${size} to measure implementation/network RTT (round trip time) / latency.`,
        expectation: `Receive echo'ed ${isBinary ? 'binary' : 'text'} messages (with payload as sent). Each message is sent only after the echo of the previous one.`,
        expected: { OK: Array.from({ length: ROUND_TRIPS }, () => one) },
        close: CLEAN_NORMAL,
        bulky: true,
        minTimeoutMs: 60_000,
        run: async (ctx) => {
          for (let n = 1; n <= ROUND_TRIPS; n++) {
            if (!(await ctx.send({ opcode: isBinary ? OP_BINARY : OP_TEXT, payload }))) return;
            if (!(await ctx.waitFor(() => ctx.received.length >= n || !ctx.open, 60_000)) || !ctx.open) return;
          }
        },
      });
    });
  }
  return out;
}
