/**
 * Runs one case on a fresh connection: handshake, the case's script, then the
 * end Autobahn prescribes — this client closes with 1000 once the expected
 * events came (`closedByMe`), or waits for the server to fail the connection —
 * and the TCP close. Every wait is bounded by the case's timeout.
 */
import { CaseContext } from './case-context.js';
import type { CaseSpec } from './case-types.js';
import { FAMILY_TITLES } from './case-types.js';
import { deflateOfferHeader, parseDeflateResponse, PerMessageDeflate } from './deflate.js';
import { openWebSocket, type HandshakeOptions } from './handshake.js';
import type { CaseOutcome } from './report.js';
import { isPrefix, judge, sameEvents } from './verdict.js';

export type ConnectOptions = Omit<HandshakeOptions, 'timeoutMs'>;

export function familyOf(id: string): string {
  return id.split('.')[0];
}

export async function runCase(spec: CaseSpec, connect: ConnectOptions, timeoutMs: number): Promise<CaseOutcome> {
  const started = performance.now();
  const family = familyOf(spec.id);
  const base = { id: spec.id, family, familyTitle: FAMILY_TITLES[family] ?? '', description: spec.description, expectation: spec.expectation };
  const limit = Math.max(timeoutMs, spec.minTimeoutMs ?? 0);
  // The handshake is not part of the case: its failure is the tool's, thrown to the caller.
  const offer = spec.deflate ? deflateOfferHeader(spec.deflate) : undefined;
  const open = await openWebSocket({ ...connect, timeoutMs: Math.max(timeoutMs, 5000), ...(offer ? { extensions: offer } : {}) });
  const ctx = new CaseContext(open.socket, open.leftover, started, spec.bulky);
  let refused: { verdict: 'UNIMPLEMENTED' | 'FAILED'; reason: string } | undefined;
  if (spec.deflate) {
    ctx.note(`offered Sec-WebSocket-Extensions: ${offer}`);
    const answer = parseDeflateResponse(open.extensions, spec.deflate);
    if (answer.status === 'accepted') {
      ctx.deflate = new PerMessageDeflate(answer.params);
      ctx.note(`the server accepted: ${answer.element}`);
    } else {
      refused =
        answer.status === 'declined'
          ? { verdict: 'UNIMPLEMENTED', reason: `The server did not accept permessage-deflate (no Sec-WebSocket-Extensions in its 101${open.extensions ? `, it chose: ${open.extensions}` : ''}).` }
          : { verdict: 'FAILED', reason: `The server's answer to the permessage-deflate offer breaks RFC 7692: ${answer.reason} (it sent: ${open.extensions}).` };
      ctx.note(refused.reason);
    }
  }
  if (refused) {
    // Nothing to test: close cleanly and report why.
    await ctx.sendClose(1000);
    await ctx.waitFor(() => ctx.remoteClose !== undefined, Math.min(timeoutMs, 2000));
    ctx.drop('the case ends here');
    return { ...base, behavior: refused.verdict, behaviorClose: refused.verdict, reason: refused.reason, durationMs: Math.round(performance.now() - started), droppedBy: 'client', wire: ctx.wire.records() };
  }
  try {
    // The script's own pauses (up to 2 s in 5.19 and 6.4.x) come on top of the timeout.
    const scriptLimit = limit + (spec.pausesMs ?? 0);
    let timer: NodeJS.Timeout | undefined;
    const cut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        ctx.note(`the script did not finish within ${scriptLimit} ms`);
        resolve();
      }, scriptLimit);
    });
    await Promise.race([spec.run(ctx), cut]);
    clearTimeout(timer);
    await finish(spec, ctx, limit);
  } catch (err) {
    ctx.note(`the case stopped on an error: ${(err as Error).message}`);
    ctx.drop('ended after an error');
  }
  const j = judge(spec, ctx, limit);
  const outcome: CaseOutcome = {
    ...base,
    behavior: j.behavior,
    behaviorClose: j.behaviorClose,
    reason: j.reason,
    durationMs: Math.round(performance.now() - started),
    droppedBy: ctx.droppedByMe ? 'client' : ctx.tcpClosed ? 'server' : 'none',
    wire: ctx.wire.records(),
  };
  if (ctx.remoteClose?.code !== undefined) {
    outcome.remoteCloseCode = ctx.remoteClose.code;
    outcome.remoteCloseReason = ctx.remoteClose.reason;
  }
  if (ctx.wire.truncated) outcome.wireTruncated = true;
  return outcome;
}

async function finish(spec: CaseSpec, ctx: CaseContext, limit: number): Promise<void> {
  const lists = Object.values(spec.expected);
  if (spec.close.closedByMe && !ctx.sentClose) {
    // Autobahn closes as soon as what came matches every expected list (so,
    // with a single list, as soon as it matches); else after the wait.
    // What came can no longer become an expected list: no use waiting for more.
    const matchesAll = () => lists.every((l) => sameEvents(ctx.received, l));
    const cannotMatch = () => !lists.some((l) => isPrefix(ctx.received, l));
    await ctx.waitFor(() => matchesAll() || cannotMatch() || !ctx.open, limit);
    if (ctx.open && cannotMatch()) ctx.note('what came differs from every expected outcome: closing');
    else if (ctx.open && !matchesAll()) ctx.note(`the expected events did not come within ${limit} ms: closing`);
    if (!ctx.sentClose && !ctx.tcpClosed) await ctx.sendClose(1000);
  }
  // Wait for the server's close (or its failing of the connection), then for the TCP close.
  // When what came already fails the case, the server gets Autobahn's 1 s to close, not the whole timeout.
  const waitStart = Date.now();
  const hopeless = () => !lists.some((l) => isPrefix(ctx.received, l));
  await ctx.waitFor(() => ctx.remoteClose !== undefined || hopeless(), limit);
  if (!ctx.remoteClose && hopeless()) await ctx.waitFor(() => ctx.remoteClose !== undefined, Math.min(1000, limit - (Date.now() - waitStart)));
  ctx.waitedForCloseMs = Date.now() - waitStart;
  await ctx.waitFor(() => ctx.tcpClosed, ctx.remoteClose || ctx.violation ? limit : 0);
  if (!ctx.tcpClosed) ctx.drop(ctx.remoteClose ? `the server did not close TCP within ${limit} ms of the closing handshake` : `nothing more from the server within ${limit} ms`);
}
