/**
 * Family 5: fragmentation (RFC 6455 §5.4) — control frames may not be
 * fragmented, a continuation needs a message to continue, a new message may
 * not start inside another, and pings may come between fragments. The same
 * bytes are sent in one write, frame by frame, or one byte at a time.
 */
import { CLEAN_NORMAL, pong, serverFails, text, type CaseSpec } from './case-types.js';
import type { SendOptions } from './case-context.js';
import { OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, type FrameSpec } from './frame-writer.js';

const FRAME_WISE: SendOptions = { sync: true };
const OCTET_WISE: SendOptions = { chop: 1 };

function echoFragments(id: string, how: string, opts: SendOptions, withPing: boolean): CaseSpec {
  const frames: FrameSpec[] = [{ opcode: OP_TEXT, fin: false, payload: 'fragment1' }];
  if (withPing) frames.push({ opcode: OP_PING, payload: 'ping payload' });
  frames.push({ opcode: OP_CONTINUATION, fin: true, payload: 'fragment2' });
  return {
    id,
    description: `Send text Message fragmented into 2 fragments${withPing ? ', one ping with payload in-between' : ''}${how}.`,
    expectation: withPing ? 'A pong is received, then the message is echoed back to us.' : 'Message is processed and echo\'ed back to us.',
    expected: { OK: withPing ? [pong('ping payload'), text('fragment1fragment2')] : [text('fragment1fragment2')] },
    close: CLEAN_NORMAL,
    run: async (ctx) => {
      await ctx.send(frames, opts);
    },
  };
}

function fails(id: string, description: string, frames: FrameSpec[], opts: SendOptions = {}, expectation = 'The connection is failed immediately, since there is no message to continue.'): CaseSpec {
  return {
    id,
    description,
    expectation,
    expected: { OK: [] },
    close: serverFails([1002]),
    run: async (ctx) => {
      await ctx.send(frames, opts);
    },
  };
}

function fragmentedControl(id: string, opcode: number, name: string): CaseSpec {
  return fails(id, `Send ${name} fragmented into 2 fragments.`, [
    { opcode, fin: false, payload: 'fragment1' },
    { opcode: OP_CONTINUATION, fin: true, payload: 'fragment2' },
  ], {}, 'Connection is failed immediately, since control message MUST NOT be fragmented.');
}

function orphanContinuation(id: string, fin: boolean, how: string, opts: SendOptions): CaseSpec {
  return fails(id, `Send unfragmented Text Message after Continuation Frame with FIN = ${fin}, where there is nothing to continue, sent in ${how}.`, [
    { opcode: OP_CONTINUATION, fin, payload: 'non-continuation payload' },
    { opcode: OP_TEXT, payload: 'Hello, world!' },
  ], opts);
}

function repeatedOrphan(id: string, fin: boolean): CaseSpec {
  const once: FrameSpec[] = [
    { opcode: OP_CONTINUATION, fin, payload: 'fragment1' },
    { opcode: OP_TEXT, fin: false, payload: 'fragment2' },
    { opcode: OP_CONTINUATION, fin: true, payload: 'fragment3' },
  ];
  return fails(id, `Repeated 2x: Continuation Frame with FIN = ${fin} (where there is nothing to continue), then text Message fragmented into 2 fragments.`, [...once, ...once]);
}

function pingsBetweenFragments(id: string, sync: boolean): CaseSpec {
  const fragments = ['fragment1', 'fragment2', 'fragment3', 'fragment4', 'fragment5'];
  const pings = ['pongme 1!', 'pongme 2!'];
  const opts: SendOptions = sync ? FRAME_WISE : {};
  return {
    id,
    description: sync
      ? 'Same as Case 5.19, but send all frames frame by frame, with a pause after each. This does not change the octets sent, only how the stream is chopped.'
      : 'A fragmented text message is sent in multiple frames. After sending the first 2 frames of the text message, a Ping is sent. Then we wait 1 s, then we send 2 more text fragments, another Ping and then the final text fragment. Everything is legal.',
    expectation: "The peer immediately answers the first Ping before it has received the last text message fragment. The peer pong's back the Ping's payload exactly, and echo's the payload of the fragmented message back to us.",
    expected: { OK: [pong(pings[0]), pong(pings[1]), text(fragments.join(''))] },
    close: CLEAN_NORMAL,
    pausesMs: 1000,
    run: async (ctx) => {
      await ctx.send([
        { opcode: OP_TEXT, fin: false, payload: fragments[0] },
        { opcode: OP_CONTINUATION, fin: false, payload: fragments[1] },
        { opcode: OP_PING, payload: pings[0] },
      ], opts);
      if (!(await ctx.pause(1000))) return;
      await ctx.send([
        { opcode: OP_CONTINUATION, fin: false, payload: fragments[2] },
        { opcode: OP_CONTINUATION, fin: false, payload: fragments[3] },
        { opcode: OP_PING, payload: pings[1] },
        { opcode: OP_CONTINUATION, fin: true, payload: fragments[4] },
      ], opts);
    },
  };
}

export function fragmentationCases(): CaseSpec[] {
  return [
    fragmentedControl('5.1', OP_PING, 'Ping'),
    fragmentedControl('5.2', OP_PONG, 'Pong'),
    echoFragments('5.3', '', {}, false),
    echoFragments('5.4', ', octets are sent in frame-wise chops', FRAME_WISE, false),
    echoFragments('5.5', ', octets are sent in octet-wise chops', OCTET_WISE, false),
    echoFragments('5.6', '', {}, true),
    echoFragments('5.7', ', octets are sent in frame-wise chops', FRAME_WISE, true),
    echoFragments('5.8', ', octets are sent in octet-wise chops', OCTET_WISE, true),
    orphanContinuation('5.9', true, 'one chop', {}),
    orphanContinuation('5.10', true, 'per-frame chops', FRAME_WISE),
    orphanContinuation('5.11', true, 'octet-wise chops', OCTET_WISE),
    orphanContinuation('5.12', false, 'one chop', {}),
    orphanContinuation('5.13', false, 'per-frame chops', FRAME_WISE),
    orphanContinuation('5.14', false, 'octet-wise chops', OCTET_WISE),
    {
      id: '5.15',
      description: 'Send text Message fragmented into 2 fragments, then Continuation Frame with FIN = false where there is nothing to continue, then unfragmented Text Message, all sent in one chop.',
      expectation: 'The connection is failed immediately, since there is no message to continue.',
      expected: { OK: [text('fragment1fragment2')], 'NON-STRICT': [] },
      close: serverFails([1002]),
      run: async (ctx) => {
        await ctx.send([
          { opcode: OP_TEXT, fin: false, payload: 'fragment1' },
          { opcode: OP_CONTINUATION, fin: true, payload: 'fragment2' },
          { opcode: OP_CONTINUATION, fin: false, payload: 'fragment3' },
          { opcode: OP_TEXT, fin: true, payload: 'fragment4' },
        ]);
      },
    },
    repeatedOrphan('5.16', false),
    repeatedOrphan('5.17', true),
    fails('5.18', 'Send text Message fragmented into 2 fragments, with both frame opcodes set to text, sent in one chop.', [
      { opcode: OP_TEXT, fin: false, payload: 'fragment1' },
      { opcode: OP_TEXT, fin: true, payload: 'fragment2' },
    ], {}, 'The connection is failed immediately, since all data frames after the initial data frame must have opcode 0.'),
    pingsBetweenFragments('5.19', false),
    pingsBetweenFragments('5.20', true),
  ];
}
