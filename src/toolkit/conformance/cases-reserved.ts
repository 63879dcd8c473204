/**
 * Family 3 (reserved bits set with no extension negotiated) and family 4
 * (reserved opcodes): the server must fail the connection with 1002
 * (RFC 6455 §5.2). A valid message sent before the bad frame should still be
 * echoed (OK); failing before echoing it is allowed (NON-STRICT).
 */
import { serverFails, text, type CaseSpec } from './case-types.js';
import type { SendOptions } from './case-context.js';
import { OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, type FrameSpec } from './frame-writer.js';

const HELLO = 'Hello, world!';
const BINARY_PAYLOAD = Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]);

function failing(id: string, description: string, expectation: string, frames: FrameSpec[], echoFirst: boolean, opts: SendOptions = {}): CaseSpec {
  return {
    id,
    description,
    expectation,
    expected: echoFirst ? { OK: [text(HELLO)], 'NON-STRICT': [] } : { OK: [] },
    close: serverFails([1002]),
    run: async (ctx) => {
      await ctx.send(frames, opts);
    },
  };
}

function rsvCase(id: string, rsv: number, what: string, frames: FrameSpec[], echoFirst: boolean, how = '', opts: SendOptions = {}): CaseSpec {
  return failing(
    id,
    `${what}${how}`,
    `${echoFirst ? 'Echo for first message is received, but then connection' : 'The connection'} is failed immediately, since RSV must be 0, when no extension defining RSV meaning has been negotiated.${echoFirst ? ' The Pong is not received.' : ''}`,
    frames,
    echoFirst,
    opts,
  );
}

export function reservedBitCases(): CaseSpec[] {
  const then = (rsv: number): FrameSpec[] => [{ opcode: OP_TEXT, payload: HELLO }, { opcode: OP_TEXT, payload: HELLO, rsv }, { opcode: OP_PING }];
  return [
    rsvCase('3.1', 1, 'Send small text message with RSV = 1.', [{ opcode: OP_TEXT, payload: HELLO, rsv: 1 }], false),
    rsvCase('3.2', 2, 'Send small text message, then send again with RSV = 2, then send Ping.', then(2), true),
    rsvCase('3.3', 3, 'Send small text message, then send again with RSV = 3, then send Ping.', then(3), true, ' Octets are sent in frame-wise chops, with a pause between frames.', { sync: true }),
    rsvCase('3.4', 4, 'Send small text message, then send again with RSV = 4, then send Ping.', then(4), true, ' Octets are sent in octet-wise chops.', { chop: 1 }),
    rsvCase('3.5', 5, 'Send small binary message with RSV = 5.', [{ opcode: OP_BINARY, payload: BINARY_PAYLOAD, rsv: 5 }], false),
    rsvCase('3.6', 6, 'Send Ping with RSV = 6.', [{ opcode: OP_PING, payload: HELLO, rsv: 6 }], false),
    // A raw close frame: it is not this client's closing handshake, the server must fail the connection.
    rsvCase('3.7', 7, 'Send Close with RSV = 7.', [{ opcode: OP_CLOSE, payload: Buffer.from([0x03, 0xe8]), rsv: 7 }], false),
  ];
}

function opcodeCase(id: string, opcode: number, withPayload: boolean, afterText: boolean): CaseSpec {
  const kind = opcode < 8 ? 'non-control' : 'control';
  const bad: FrameSpec = { opcode, payload: withPayload ? 'reserved opcode payload' : undefined };
  const frames: FrameSpec[] = afterText ? [{ opcode: OP_TEXT, payload: HELLO }, bad, { opcode: OP_PING }] : [bad];
  const frameText = `frame with reserved ${kind} Opcode = ${opcode}${withPayload ? ' and non-empty payload' : ''}`;
  return failing(
    id,
    afterText ? `Send small text message, then send ${frameText}, then send Ping.` : `Send ${frameText}.`,
    afterText ? 'Echo for first message is received, but then connection is failed immediately, since reserved opcode frame is used. A Pong is not received.' : 'The connection is failed immediately.',
    frames,
    afterText,
  );
}

export function opcodeCases(): CaseSpec[] {
  return [
    opcodeCase('4.1.1', 3, false, false),
    opcodeCase('4.1.2', 4, true, false),
    opcodeCase('4.1.3', 5, false, true),
    opcodeCase('4.1.4', 6, true, true),
    opcodeCase('4.1.5', 7, true, true),
    opcodeCase('4.2.1', 11, false, false),
    opcodeCase('4.2.2', 12, true, false),
    opcodeCase('4.2.3', 13, false, true),
    opcodeCase('4.2.4', 14, true, true),
    opcodeCase('4.2.5', 15, true, true),
  ];
}
