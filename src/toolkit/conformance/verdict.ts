/**
 * Autobahn's rules for the two verdicts of a case. `behavior`: the events the
 * server produced, compared with each expected list (OK, then NON-STRICT);
 * none matches → FAILED. `behaviorClose`, checked in Autobahn's order:
 *  - the wrong endpoint started the close, the server never failed a
 *    connection it had to fail, or never answered this client's close → FAILED;
 *  - a clean close was required and the closing handshake did not complete
 *    → FAILED (Autobahn: UNCLEAN);
 *  - the server's close code is not an accepted one → FAILED (Autobahn: WRONG CODE);
 *  - this client had to end TCP after the closing handshake → NON-STRICT
 *    (Autobahn: FAILED BY CLIENT; RFC 6455 §7.1.1 says the server SHOULD close TCP first);
 *  - else OK.
 */
import type { CaseContext } from './case-context.js';
import type { CaseEvent, CaseSpec, Judgement } from './case-types.js';
import type { Verdict } from './report.js';
import { previewOf } from './wire-log.js';

export function sameEvents(a: readonly CaseEvent[], b: readonly CaseEvent[]): boolean {
  return a.length === b.length && isPrefix(a, b);
}

/** `a` is the start of `b`: more events may still make them equal. */
export function isPrefix(a: readonly CaseEvent[], b: readonly CaseEvent[]): boolean {
  if (a.length > b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.type !== y.type) return false;
    if (x.type === 'timeout') {
      if (x.label !== (y as typeof x).label) return false;
      continue;
    }
    if (x.type === 'message' && x.binary !== (y as typeof x).binary) return false;
    if (!x.data.equals((y as typeof x).data)) return false;
  }
  return true;
}

/** "message text 'Hello' (5 bytes), pong 'x'" — for reasons. */
export function describeEvents(list: readonly CaseEvent[]): string {
  if (list.length === 0) return 'nothing';
  const one = (e: CaseEvent): string => {
    if (e.type === 'timeout') return `wait ${e.label} passed with the connection open`;
    const kind = e.type === 'message' ? `${e.binary ? 'binary' : 'text'} message` : e.type;
    const p = e.data.length === 0 ? 'empty' : e.data.length > 40 ? `${e.data.length} bytes` : `"${previewOf(e.data)}"`;
    return `${kind} ${p}`;
  };
  const shown = list.slice(0, 4).map(one).join(', ');
  return list.length > 4 ? `${shown} … (${list.length} events)` : shown;
}

export function judge(spec: CaseSpec, ctx: CaseContext, timeoutMs: number): Judgement {
  let behavior: Verdict = 'FAILED';
  let matched: Verdict | undefined;
  let reason = '';
  for (const v of ['OK', 'NON-STRICT', 'INFORMATIONAL'] as const) {
    const list = spec.expected[v];
    if (list && sameEvents(ctx.received, list)) {
      behavior = matched = v;
      break;
    }
  }
  if (ctx.violation) {
    behavior = 'FAILED';
    matched = undefined;
    reason = `The server broke RFC 6455: ${ctx.violation}.`;
  } else if (behavior === 'FAILED') {
    const want = spec.expected.OK ?? [];
    reason = `Expected ${describeEvents(want)}; got ${describeEvents(ctx.received)}.`;
  } else if (behavior === 'NON-STRICT') {
    reason = `Got ${describeEvents(ctx.received)}: allowed, but not the strict reading (${describeEvents(spec.expected.OK ?? [])}).`;
  }

  const exp = spec.close;
  const code = ctx.remoteClose?.code;
  const serverClosed = ctx.remoteClose !== undefined || (ctx.tcpClosed && !ctx.droppedByMe);
  let behaviorClose: Verdict = 'OK';
  let closeReason = '';
  let wrongCode = false;
  if (!exp.closedByMe && !ctx.closedByMe && !serverClosed) {
    behaviorClose = 'FAILED';
    closeReason = `The server did not fail the connection within ${ctx.waitedForCloseMs || timeoutMs} ms (expected a close${exp.codes.length ? ` with ${exp.codes.join(' or ')}` : ''} or the TCP connection dropped).`;
  } else if (exp.closedByMe && ctx.closedByMe && !serverClosed) {
    // Autobahn reports this as FAILED BY CLIENT; a server that neither answers a
    // close frame nor drops the connection leaves the client no choice (RFC 6455 §5.5.1).
    behaviorClose = 'FAILED';
    closeReason = `The server neither answered the close frame nor closed the connection within ${ctx.waitedForCloseMs || timeoutMs} ms.`;
  } else if (exp.closedByMe !== ctx.closedByMe) {
    behaviorClose = 'FAILED';
    closeReason = exp.closedByMe
      ? `The server closed first${code !== undefined ? ` with ${code}` : ''}, but this client was to close the connection.`
      : 'The connection was failed by this client, but the server was to fail it.';
  } else if (exp.requireClean && !(ctx.sentClose && ctx.remoteClose)) {
    behaviorClose = 'FAILED';
    closeReason = ctx.remoteClose ? 'The closing handshake did not complete.' : 'The server dropped the connection without a close frame, but a clean close was required.';
  } else if (code !== undefined && !exp.codes.includes(code)) {
    behaviorClose = 'FAILED';
    wrongCode = true;
    closeReason = `The server closed with ${code}; the close code should have been ${exp.codes.join(' or ')} (or none).`;
  } else if (ctx.droppedByMe) {
    behaviorClose = 'NON-STRICT';
    closeReason = 'The server did not close the TCP connection after the closing handshake: this client had to (RFC 6455 §7.1.1 prefers the server to).';
  }
  const reasons = [reason, closeReason].filter(Boolean);
  if (reasons.length === 0) reasons.push(`Got ${describeEvents(ctx.received)}, as expected; the connection was properly closed${code !== undefined ? ` (${code})` : ''}.`);
  const j: Judgement = { behavior, behaviorClose, reason: reasons.join(' '), wrongCode, matched };
  return spec.finish ? spec.finish(j) : j;
}

/** Family 7's rule: a wrong close code fails the behavior too. */
export function wrongCodeFails(j: Judgement): Judgement {
  return j.wrongCode ? { ...j, behavior: 'FAILED' } : j;
}
