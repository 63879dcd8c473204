/**
 * Family 7: the closing handshake (RFC 6455 §5.5.1, §7). After a close
 * nothing more is processed; a close payload is empty or a valid code with a
 * UTF-8 reason, at most 125 bytes; codes outside the registry are refused.
 * A wrong close code fails the case's behavior too, as in Autobahn.
 */
import { CLEAN_NORMAL, text, textBytes, type CaseSpec, type ExpectedClose, type Judgement } from './case-types.js';
import { OP_CLOSE, OP_CONTINUATION, OP_PING, OP_TEXT, repeatTo } from './frame-writer.js';
import { wrongCodeFails } from './verdict.js';

const PROTOCOL_ERROR: ExpectedClose = { closedByMe: true, codes: [1002], requireClean: false };
const INVALID_UTF8_REASON = Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex');

function informational(j: Judgement, ok: string, nonStrict: string): Judgement {
  const what = j.matched === 'OK' ? ok : j.matched === 'NON-STRICT' ? nonStrict : j.reason;
  return { ...j, behavior: 'INFORMATIONAL', behaviorClose: 'INFORMATIONAL', reason: what };
}

function closeCase(id: string, description: string, expectation: string, close: ExpectedClose, run: CaseSpec['run'], expected: CaseSpec['expected'] = { OK: [] }): CaseSpec {
  return { id, description, expectation, expected, close, run, finish: wrongCodeFails };
}

const BIG_7_1_6 = repeatTo('BAsd7&jh23', 256 * 1024);
const VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999];
const INVALID_CODES = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999];

export function closeCases(): CaseSpec[] {
  const out: CaseSpec[] = [
    // Autobahn accepts only the echo. RFC 6455 §5.5.1 lets a server answer the
    // close before its application echoes (Python websockets does when both
    // frames arrive in one read): NON-STRICT here, not FAILED.
    closeCase('7.1.1', 'Send a message followed by a close frame.', 'Echoed message followed by clean close with normal code.', CLEAN_NORMAL, async (ctx) => {
      await ctx.send({ opcode: OP_TEXT, payload: 'Hello World' });
      await ctx.sendClose(1000);
    }, { OK: [text('Hello World')], 'NON-STRICT': [] }),
    closeCase('7.1.2', 'Send two close frames.', 'Clean close with normal code. Second close frame ignored.', CLEAN_NORMAL, async (ctx) => {
      await ctx.sendClose(1000);
      await ctx.sendClose(1000);
    }),
    closeCase('7.1.3', 'Send a ping after close message.', 'Clean close with normal code, no pong.', CLEAN_NORMAL, async (ctx) => {
      await ctx.sendClose(1000);
      await ctx.send({ opcode: OP_PING });
    }),
    closeCase('7.1.4', 'Send text message after sending a close frame.', 'Clean close with normal code. Text message ignored.', CLEAN_NORMAL, async (ctx) => {
      await ctx.sendClose(1000);
      await ctx.send({ opcode: OP_TEXT, payload: 'Hello World' });
    }),
    closeCase('7.1.5', 'Send message fragment1 followed by close then fragment.', 'Clean close with normal code.', CLEAN_NORMAL, async (ctx) => {
      await ctx.send({ opcode: OP_TEXT, fin: false, payload: 'fragment1' });
      await ctx.sendClose(1000);
      await ctx.send({ opcode: OP_CONTINUATION, fin: true, payload: 'fragment2' });
    }),
    {
      id: '7.1.6',
      description: 'Send 256K message followed by close then a ping.',
      expectation:
        'Case outcome depends on implementation defined close behavior. Message and close frame are sent back to back. If the close frame is processed before the text message write is complete (as can happen in asynchronous processing models) the close frame is processed first and the text message may not be received or may only be partially received.',
      // Both messages echoed before the close: OK; the close processed first: NON-STRICT. Informational either way.
      expected: { OK: [textBytes(BIG_7_1_6), text('Hello World!')], 'NON-STRICT': [] },
      close: CLEAN_NORMAL,
      run: async (ctx) => {
        await ctx.send([{ opcode: OP_TEXT, payload: BIG_7_1_6 }, { opcode: OP_TEXT, payload: 'Hello World!' }]);
        await ctx.sendClose(1000);
        await ctx.send({ opcode: OP_PING });
      },
      finish: (j) => informational(j, 'Text message was processed before close.', 'Close was processed before text message could be returned.'),
    },
    closeCase('7.3.1', 'Send a close frame with payload length 0 (no close code, no close reason).', 'Clean close with normal code.', CLEAN_NORMAL, async (ctx) => {
      await ctx.sendClose();
    }),
    closeCase('7.3.2', 'Send a close frame with payload length 1.', 'Clean close with protocol error or drop TCP.', PROTOCOL_ERROR, async (ctx) => {
      ctx.closedByMe = true;
      ctx.sentClose = true;
      await ctx.send({ opcode: OP_CLOSE, payload: 'a' });
    }),
    closeCase('7.3.3', 'Send a close frame with payload length 2 (regular close with a code).', 'Clean close with normal code.', CLEAN_NORMAL, async (ctx) => {
      await ctx.sendClose(1000);
    }),
    closeCase('7.3.4', 'Send a close frame with close code and close reason.', 'Clean close with normal code.', CLEAN_NORMAL, async (ctx) => {
      await ctx.sendClose(1000, 'Hello World!');
    }),
    closeCase('7.3.5', 'Send a close frame with close code and close reason of maximum length (123).', 'Clean close with normal code.', CLEAN_NORMAL, async (ctx) => {
      await ctx.sendClose(1000, 'B'.repeat(123));
    }),
    closeCase('7.3.6', 'Send a close frame with close code and close reason which is too long (124) - total frame payload 126 octets.', 'Clean close with protocol error code or dropped TCP connection.', PROTOCOL_ERROR, async (ctx) => {
      await ctx.sendClose(1000, 'B'.repeat(124));
    }),
    closeCase('7.5.1', 'Send a close frame with invalid UTF8 payload.', 'Clean close with protocol error or invalid utf8 code or dropped TCP.', { closedByMe: true, codes: [1002, 1007], requireClean: false }, async (ctx) => {
      await ctx.sendClose(1000, INVALID_UTF8_REASON);
    }),
  ];
  VALID_CODES.forEach((code, i) =>
    out.push(
      closeCase(`7.7.${i + 1}`, `Send close with valid close code ${code}.`, 'Clean close with normal or echoed code.', { closedByMe: true, codes: [1000, code], requireClean: true }, async (ctx) => {
        await ctx.sendClose(code);
      }),
    ),
  );
  INVALID_CODES.forEach((code, i) =>
    out.push(
      closeCase(`7.9.${i + 1}`, `Send close with invalid close code ${code}.`, 'Clean close with protocol error code or drop TCP.', PROTOCOL_ERROR, async (ctx) => {
        await ctx.sendClose(code);
      }),
    ),
  );
  for (const [i, code] of [5000, 65535].entries()) {
    out.push({
      id: `7.13.${i + 1}`,
      description: `Send close with close code ${code}.`,
      expectation: i === 0 ? 'The close code is out of the ranges specified in RFC 6455 §7.4.2. What should the server do? Is this an error or not?' : 'Actual events are undefined by the spec.',
      expected: { OK: [] },
      close: { closedByMe: true, codes: [1000, code, 1002], requireClean: false },
      run: async (ctx) => {
        await ctx.sendClose(code);
      },
      finish: (j) => ({ ...j, behavior: 'INFORMATIONAL', behaviorClose: 'INFORMATIONAL', reason: `Actual events are undefined by the spec; here: ${j.reason}` }),
    });
  }
  return out;
}
