/**
 * Family 6: UTF-8 handling. A text message must be valid UTF-8 (RFC 6455
 * §8.1): valid ones are echoed, invalid ones fail the connection with 1007 —
 * also when the bytes come one frame or one chop at a time, and, for the
 * strict reading, as soon as the invalid byte arrives (6.4.x, "fail fast").
 */
import { CLEAN_NORMAL, serverFails, textBytes, type CaseEvent, type CaseSpec } from './case-types.js';
import type { CaseContext } from './case-context.js';
import { encodeFrame, OP_CONTINUATION, OP_TEXT, type FrameSpec } from './frame-writer.js';
import { KOSME, utf8Groups } from './utf8-sequences.js';

const INVALID = Buffer.concat([KOSME, Buffer.from('eda080', 'hex'), Buffer.from('edited')]);
const HELLO_UTF8 = Buffer.from('Hello-µ@ßöäüàá-UTF-8!!', 'utf8');

function octetFrames(payload: Buffer): FrameSpec[] {
  return [...payload].map((byte, i) => ({ opcode: i === 0 ? OP_TEXT : OP_CONTINUATION, fin: i === payload.length - 1, payload: Buffer.from([byte]) }));
}

function echoed(id: string, description: string, frames: FrameSpec[], payload: Buffer): CaseSpec {
  return {
    id,
    description,
    expectation: "The message is echo'ed back to us.",
    expected: { OK: [textBytes(payload)] },
    close: CLEAN_NORMAL,
    run: async (ctx) => {
      await ctx.send(frames);
    },
  };
}

function rejected(id: string, description: string, frames: FrameSpec[]): CaseSpec {
  return {
    id,
    description,
    expectation: 'The connection is failed immediately, since the payload is not valid UTF-8.',
    expected: { OK: [] },
    close: serverFails([1007]),
    run: async (ctx) => {
      await ctx.send(frames);
    },
  };
}

const FAIL_FAST_OK: CaseEvent[] = [{ type: 'timeout', label: 'A' }];
const FAIL_FAST_LATE: CaseEvent[] = [{ type: 'timeout', label: 'A' }, { type: 'timeout', label: 'B' }];

/** 6.4.x: three parts with 1 s between them; the second makes the message invalid. */
function failFast(id: string, parts: [Buffer, Buffer, Buffer], asChops: boolean): CaseSpec {
  const [p1, p2, p3] = parts;
  const hex = `PART1 = ${p1.toString('hex')}, PART2 = ${p2.toString('hex')}, PART3 = ${p3.toString('hex')}.`;
  const unit = asChops ? 'chop' : 'frame';
  return {
    id,
    description: asChops
      ? `Send an invalid UTF-8 text message in one frame written in 3 chops, 1 s apart; the second chop makes the payload invalid. ${hex}`
      : `Send an invalid UTF-8 text message in 3 fragments (frames), 1 s apart. PART1 and PART3 are valid UTF-8 in themselves; PART2 makes the sequence invalid. ${hex}`,
    expectation: `The first ${unit} is accepted: we expect to time out on the first wait. The 2nd ${unit} should be rejected immediately (fail fast on UTF-8). If we time out, we expect the connection to be failed at least then, since the complete message payload is not valid UTF-8.`,
    expected: { OK: FAIL_FAST_OK, 'NON-STRICT': FAIL_FAST_LATE },
    close: serverFails([1007]),
    pausesMs: 2000,
    run: async (ctx: CaseContext) => {
      if (asChops) {
        const payload = Buffer.concat(parts);
        const frame: FrameSpec = { opcode: OP_TEXT, payload };
        const bytes = encodeFrame(frame);
        const header = bytes.length - payload.length;
        ctx.logSent(frame, 'written in 3 chops, 1 s apart: the header with PART1, PART2, PART3');
        const cut1 = header + p1.length;
        const cut2 = cut1 + p2.length;
        await ctx.sendBytes(bytes.subarray(0, cut1), 'header and PART1');
        if (!(await ctx.pause(1000))) return;
        ctx.received.push({ type: 'timeout', label: 'A' });
        await ctx.sendBytes(bytes.subarray(cut1, cut2), 'PART2');
        if (!(await ctx.pause(1000))) return;
        ctx.received.push({ type: 'timeout', label: 'B' });
        await ctx.sendBytes(bytes.subarray(cut2), 'PART3', true);
        return;
      }
      await ctx.send({ opcode: OP_TEXT, fin: false, payload: p1 });
      if (!(await ctx.pause(1000))) return;
      ctx.received.push({ type: 'timeout', label: 'A' });
      await ctx.send({ opcode: OP_CONTINUATION, fin: false, payload: p2 });
      if (!(await ctx.pause(1000))) return;
      ctx.received.push({ type: 'timeout', label: 'B' });
      await ctx.send({ opcode: OP_CONTINUATION, fin: true, payload: p3 });
    },
  };
}

export function utf8Cases(): CaseSpec[] {
  const out: CaseSpec[] = [
    echoed('6.1.1', 'Send text message of length 0.', [{ opcode: OP_TEXT }], Buffer.alloc(0)),
    echoed('6.1.2', 'Send fragmented text message, 3 fragments each of length 0.', [
      { opcode: OP_TEXT, fin: false },
      { opcode: OP_CONTINUATION, fin: false },
      { opcode: OP_CONTINUATION, fin: true },
    ], Buffer.alloc(0)),
    echoed('6.1.3', 'Send fragmented text message, 3 fragments, first and last of length 0, middle non-empty.', [
      { opcode: OP_TEXT, fin: false },
      { opcode: OP_CONTINUATION, fin: false, payload: 'middle frame payload' },
      { opcode: OP_CONTINUATION, fin: true },
    ], Buffer.from('middle frame payload')),
    echoed('6.2.1', `Send a valid UTF-8 text message in one fragment. Message payload: ${HELLO_UTF8.toString()}`, [{ opcode: OP_TEXT, payload: HELLO_UTF8 }], HELLO_UTF8),
    echoed('6.2.2', 'Send a valid UTF-8 text message in two fragments, fragmented on UTF-8 code point boundary.', [
      { opcode: OP_TEXT, fin: false, payload: Buffer.from('Hello-µ@ßöä') },
      { opcode: OP_CONTINUATION, fin: true, payload: Buffer.from('üàá-UTF-8!!') },
    ], HELLO_UTF8),
    echoed('6.2.3', 'Send a valid UTF-8 text message in fragments of 1 octet, resulting in frames ending on positions which are not code point ends.', octetFrames(HELLO_UTF8), HELLO_UTF8),
    echoed('6.2.4', `Send a valid UTF-8 text message in fragments of 1 octet, resulting in frames ending on positions which are not code point ends. Payload: 0x${KOSME.toString('hex')}`, octetFrames(KOSME), KOSME),
    rejected('6.3.1', `Send invalid UTF-8 text message unfragmented. Payload: 0x${INVALID.toString('hex')}`, [{ opcode: OP_TEXT, payload: INVALID }]),
    rejected('6.3.2', `Send invalid UTF-8 text message in fragments of 1 octet. Payload: 0x${INVALID.toString('hex')}`, octetFrames(INVALID)),
    failFast('6.4.1', [KOSME, Buffer.from('f4908080', 'hex'), Buffer.from('edited')], false),
    failFast('6.4.2', [Buffer.concat([KOSME, Buffer.from('f4', 'hex')]), Buffer.from('90', 'hex'), Buffer.from('8080656469746564', 'hex')], false),
    failFast('6.4.3', [KOSME, Buffer.from('f4908080', 'hex'), Buffer.from('edited')], true),
    failFast('6.4.4', [Buffer.concat([KOSME, Buffer.from('f4', 'hex')]), Buffer.from('90', 'hex'), Buffer.from('8080656469746564', 'hex')], true),
  ];
  utf8Groups().forEach((g, gi) => {
    g.sequences.forEach((s, si) => {
      const id = `6.${gi + 5}.${si + 1}`;
      const frames: FrameSpec[] = [{ opcode: OP_TEXT, payload: s.bytes }];
      const what = `(${g.title}) Payload: 0x${s.bytes.toString('hex')}`;
      out.push(
        s.valid
          ? echoed(id, `Send a text message with payload which is valid UTF-8 in one fragment. ${what}`, frames, s.bytes)
          : rejected(id, `Send a text message with payload which is not valid UTF-8 in one fragment. ${what}`, frames),
      );
    });
  });
  return out;
}
