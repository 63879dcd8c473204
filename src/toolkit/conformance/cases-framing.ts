/**
 * Family 1 (framing: text and binary messages at the payload-length
 * boundaries 125/126/127 and 65535/65536) and family 10 (a 64 KiB message
 * sent as many 1300-byte fragments).
 */
import { CLEAN_NORMAL, binary, text, textBytes, type CaseSpec } from './case-types.js';
import { OP_BINARY, OP_CONTINUATION, OP_TEXT } from './frame-writer.js';

const SIZES = [0, 125, 126, 127, 128, 65535, 65536];

function echoCase(id: string, isBinary: boolean, size: number, chop?: number): CaseSpec {
  const payload = isBinary ? Buffer.alloc(size, 0xfe) : Buffer.alloc(size, '*');
  const kind = isBinary ? 'binary' : 'text';
  return {
    id,
    description: `Send ${kind} message with payload of length ${size}.${chop ? ` Sent out data in chops of ${chop} octets.` : ''}`,
    expectation: `Receive echo'ed ${kind} message (with payload as sent). Clean close with normal code.`,
    expected: { OK: [isBinary ? binary(payload) : textBytes(payload)] },
    close: CLEAN_NORMAL,
    run: async (ctx) => {
      await ctx.send({ opcode: isBinary ? OP_BINARY : OP_TEXT, payload }, { chop });
    },
  };
}

export function framingCases(): CaseSpec[] {
  const out: CaseSpec[] = [];
  SIZES.forEach((size, i) => out.push(echoCase(`1.1.${i + 1}`, false, size)));
  out.push(echoCase('1.1.8', false, 65536, 997));
  SIZES.forEach((size, i) => out.push(echoCase(`1.2.${i + 1}`, true, size)));
  out.push(echoCase('1.2.8', true, 65536, 997));
  return out;
}

export function miscCases(): CaseSpec[] {
  const payload = Buffer.alloc(65536, '*');
  return [
    {
      id: '10.1.1',
      description: 'Send text message with payload of length 65536 auto-fragmented with autoFragmentSize = 1300.',
      expectation: "Receive echo'ed text message (with payload as sent and transmitted frame counts as sent). Clean close with normal code.",
      expected: { OK: [text(payload.toString())] },
      close: CLEAN_NORMAL,
      run: async (ctx) => {
        const frames = [];
        for (let at = 0; at < payload.length; at += 1300) {
          frames.push({ opcode: at === 0 ? OP_TEXT : OP_CONTINUATION, fin: at + 1300 >= payload.length, payload: payload.subarray(at, at + 1300) });
        }
        await ctx.send(frames);
      },
    },
  ];
}
