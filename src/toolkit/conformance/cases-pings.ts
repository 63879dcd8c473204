/**
 * Family 2: pings and pongs — payload sizes up to the 125-byte limit of
 * control frames (RFC 6455 §5.5), unsolicited pongs, many pings in a row.
 */
import { CLEAN_NORMAL, pong, serverFails, type CaseSpec } from './case-types.js';
import { OP_PING, OP_PONG } from './frame-writer.js';

const BINARY_PING = Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]);

function pingCase(id: string, description: string, payload: Buffer | string, chop?: number): CaseSpec {
  return {
    id,
    description,
    expectation: 'Pong (with payload echoed as sent) is sent in reply to Ping. Clean close with normal code.',
    expected: { OK: [pong(payload)] },
    close: CLEAN_NORMAL,
    run: async (ctx) => {
      await ctx.send({ opcode: OP_PING, payload }, { chop });
    },
  };
}

function tenPings(id: string, chop?: number): CaseSpec {
  const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
  return {
    id,
    description: `Send 10 Pings with payload.${chop ? ' Send out octets in octet-wise chops.' : ''}`,
    expectation: 'Pongs for our Pings with all the payloads. Note: this is not required by the spec, but checked anyway. Clean close with normal code.',
    expected: { OK: payloads.map((p) => pong(p)) },
    close: CLEAN_NORMAL,
    run: async (ctx) => {
      for (const payload of payloads) await ctx.send({ opcode: OP_PING, payload }, { chop });
    },
  };
}

export function pingCases(): CaseSpec[] {
  return [
    pingCase('2.1', 'Send ping without payload.', ''),
    pingCase('2.2', 'Send ping with small text payload.', 'Hello, world!'),
    pingCase('2.3', 'Send ping with small binary (non UTF-8) payload.', BINARY_PING),
    pingCase('2.4', 'Send ping with binary payload of 125 octets.', Buffer.alloc(125, 0xfe)),
    {
      id: '2.5',
      description: 'Send ping with binary payload of 126 octets.',
      expectation: 'Connection is failed immediately (1002/Protocol Error), since control frames are only allowed to have payload up to and including 125 octets.',
      expected: { OK: [] },
      close: serverFails([1002]),
      run: async (ctx) => {
        await ctx.send({ opcode: OP_PING, payload: Buffer.alloc(126, 0xfe) });
      },
    },
    pingCase('2.6', 'Send ping with binary payload of 125 octets, send in octet-wise chops.', Buffer.alloc(125, 0xfe), 1),
    {
      id: '2.7',
      description: 'Send unsolicited pong without payload. Verify nothing is received. Clean close with normal code.',
      expectation: 'Nothing.',
      expected: { OK: [] },
      close: CLEAN_NORMAL,
      run: async (ctx) => {
        await ctx.send({ opcode: OP_PONG });
      },
    },
    {
      id: '2.8',
      description: 'Send unsolicited pong with payload. Verify nothing is received. Clean close with normal code.',
      expectation: 'Nothing.',
      expected: { OK: [] },
      close: CLEAN_NORMAL,
      run: async (ctx) => {
        await ctx.send({ opcode: OP_PONG, payload: 'unsolicited pong payload' });
      },
    },
    {
      id: '2.9',
      description: 'Send unsolicited pong with payload. Send ping with payload. Verify pong for ping is received.',
      expectation: 'Nothing in reply to own Pong, but Pong with payload echoed for Ping. Clean close with normal code.',
      expected: { OK: [pong('ping payload')] },
      close: CLEAN_NORMAL,
      run: async (ctx) => {
        await ctx.send({ opcode: OP_PONG, payload: 'unsolicited pong payload' });
        await ctx.send({ opcode: OP_PING, payload: 'ping payload' });
      },
    },
    tenPings('2.10'),
    tenPings('2.11', 1),
  ];
}
