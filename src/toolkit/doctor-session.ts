/**
 * Steps 7–9 of `porthole doctor`, over the connection its handshake opened:
 * a ping (and optionally a message) both ways, an idle stretch to catch a
 * proxy's read timeout, and the closing handshake.
 */
import { randomBytes } from 'node:crypto';
import { describeCloseCode } from './close-codes.js';
import { makeStep, formatMs, type DoctorStep } from './doctor-step.js';
import { hostRefusedAdvice } from './doctor-refusal.js';
import type { WireSession } from './doctor-wire.js';

export interface SessionContext {
  session: WireSession;
  timeoutMs: number;
  /** The proxy the 101 came through, if it named itself (Server: nginx…). */
  proxy: { name: string; evidence: string } | undefined;
  onProgress?: (line: string) => void;
  /** The Host the handshake carried, for advice that names it. */
  hostSent?: string;
}

/** Idle cuts people meet, by the second they happen at (±3 s). */
const KNOWN_IDLE_CUTS: readonly [number, string][] = [
  [60, 'nginx’s default proxy_read_timeout (60 s), also the default idle timeout of AWS load balancers'],
  [55, 'Heroku’s router (55 s)'],
  [100, 'Cloudflare’s proxy (100 s)'],
];

/** How the connection ended, in words: `close frame 1014 (bad gateway: …) "reason"`, `TCP FIN without a close frame`. */
export function describeEnd(session: WireSession): string {
  if (session.closeFrame) {
    const { code, reason } = session.closeFrame;
    return `close frame ${code} (${describeCloseCode(code)})${reason ? ` reason "${reason}"` : ''}`;
  }
  const end = session.ended;
  if (!end) return 'still open';
  if (end.how === 'fin') return 'TCP FIN without a close frame (a browser reports 1006)';
  if (end.how === 'reset') return `TCP reset${end.code ? ` (${end.code})` : ''} without a close frame (a browser reports 1006)`;
  return `socket error ${end.code ?? ''} without a close frame (a browser reports 1006)`.replace('  ', ' ');
}

function endedAt(session: WireSession): number {
  return session.closeFrame?.at ?? session.ended?.at ?? performance.now();
}

function protocolFailure(session: WireSession): DoctorStep {
  return makeStep('roundtrip', 'fail', `protocol violation: ${session.problem}`, {
    explanation: 'A browser closes the connection at the first frame that breaks RFC 6455; the page sees 1002 or 1006. The server’s WebSocket implementation (or a proxy that rewrites frames) is at fault.',
    fix: 'use a maintained WebSocket library on the server, and proxies that pass frames through untouched',
    data: { problem: session.problem },
  });
}

/** Explains a close that came right after the handshake, before the doctor said anything. */
function closedEarly(session: WireSession, hostSent?: string): DoctorStep {
  const how = describeEnd(session);
  const code = session.closeFrame?.code;
  let explanation: string;
  let fix: string;
  // Porthole puts its error code first in the reasons of refusals it decides itself.
  const phCode = /^(PH_ERR_[A-Z_]+)\b/.exec(session.closeFrame?.reason ?? '')?.[1];
  if (phCode === 'PH_ERR_HOST_REFUSED') {
    const advice = hostRefusedAdvice(hostSent ?? 'the Host sent', session.closeFrame?.reason);
    return makeStep('roundtrip', 'fail', `closed before a ping could get its pong: ${how}`, {
      ...advice,
      data: { cause: 'host-refused', closeCode: code ?? null, closeReason: session.closeFrame?.reason ?? null, end: session.ended?.how ?? null },
    });
  }
  if (code === 1014 || code === 1011 || code === 1013) {
    explanation =
      `The handshake succeeded, then the server closed at once: ${how}. Gateways (Porthole among them) complete the handshake and close with such a code ` +
      'when the app behind them cannot be reached, so a browser can read why — the reason names the cause.';
    fix = 'fix what the reason names: start the app, or correct the port or URL the gateway forwards to';
  } else if (code === 1008) {
    explanation = `The server accepted the handshake, then refused the connection by policy: ${how}. Usually Origin, authentication or the path.`;
    const plain = 'send what the server expects (--origin, -H "Cookie: …", a token in the URL)';
    fix = session.closeFrame?.reason ? `do what the reason says (Porthole's reason names the path and the app's own URL); otherwise ${plain}` : plain;
  } else if (code !== undefined) {
    explanation = `The server closed right after the handshake: ${how}. It may expect something first (an authentication message) or be shutting down.`;
    fix = 'check the server’s protocol and logs';
  } else {
    explanation =
      `The connection was cut right after the handshake: ${how}. A backend behind a proxy crashed or refused, or the app drops clients it does not want without saying why.`;
    fix = 'check the server’s log at the time of the doctor’s connection';
  }
  return makeStep('roundtrip', 'fail', `closed before a ping could get its pong: ${how}`, {
    explanation,
    fix,
    data: { closeCode: code ?? null, closeReason: session.closeFrame?.reason ?? null, end: session.ended?.how ?? null },
  });
}

/** Step 7: ping → pong, and `message` → echo. */
export async function roundTripStep(ctx: SessionContext, message: string | undefined): Promise<DoctorStep> {
  const { session, timeoutMs } = ctx;
  if (!session.open) return closedEarly(session, ctx.hostSent);
  const payload = `porthole-doctor ${randomBytes(4).toString('hex')}`;
  const sentAt = performance.now();
  session.ping(payload);
  const pong = await session.waitUntil(
    () => session.pongs.find((p) => p.payload.toString('utf8') === payload) ?? (session.open && !session.problem ? undefined : 'stopped'),
    timeoutMs,
  );
  if (session.problem) return protocolFailure(session);
  if (pong === 'stopped') return closedEarly(session, ctx.hostSent);
  if (!pong)
    return makeStep('roundtrip', 'fail', `no pong within ${timeoutMs / 1000} s`, {
      explanation:
        'RFC 6455 §5.5.2 requires an endpoint to answer a ping with a pong. Nothing came back: the server’s event loop is stuck, or something in between swallows control frames ' +
        '(a proxy that terminates WebSocket and relays only messages).',
      fix: 'check the server and every proxy that re-frames WebSocket traffic',
      data: { pongMs: null },
    });
  const rtt = pong.at - sentAt;
  const unprompted = session.messages.length;
  const parts = [`ping → pong in ${formatMs(rtt)}`];
  if (unprompted) parts.push(`the server sent ${unprompted} message${unprompted === 1 ? '' : 's'} first`);
  const data: Record<string, unknown> = { pongMs: rtt };
  if (message === undefined) return makeStep('roundtrip', 'pass', parts.join('; '), { data });

  const mark = session.messages.length;
  const msgAt = performance.now();
  session.sendText(message);
  const echo = await session.waitUntil(
    () => session.messages.slice(mark).find((m) => !m.binary && m.data.toString('utf8') === message) ?? (session.open && !session.problem ? undefined : 'stopped'),
    timeoutMs,
  );
  if (session.problem) return protocolFailure(session);
  if (echo === 'stopped') {
    const step = closedEarly(session, ctx.hostSent);
    return makeStep('roundtrip', 'fail', `${parts[0]}, but after the message the connection closed: ${describeEnd(session)}`, {
      explanation: `The server accepted the ping but closed when it got the text message. ${step.explanation ?? ''}`,
      fix: 'send a message the server’s protocol accepts (--message), or leave it out to test the transport only',
      data: { ...data, ...step.data },
    });
  }
  if (!echo) {
    const others = session.messages.slice(mark);
    const got = others.length
      ? `the server answered ${others.length} other message${others.length === 1 ? '' : 's'} (first: ${JSON.stringify(others[0].data.toString('utf8').slice(0, 80))})`
      : `no message came back in ${timeoutMs / 1000} s`;
    return makeStep('roundtrip', 'warn', `${parts[0]}; message not echoed: ${got}`, {
      explanation: 'The transport works (the pong came back). The server is not an echo server, or it answers this message differently: that is its protocol, not a proxy problem.',
      data: { ...data, echoMs: null, received: others.length },
    });
  }
  data.echoMs = echo.at - msgAt;
  parts.push(`message echoed in ${formatMs(echo.at - msgAt)}`);
  return makeStep('roundtrip', 'pass', parts.join('; '), { data });
}

/** Step 8: stay silent for `idleMs` and see whether something cuts the connection. */
export async function idleStep(ctx: SessionContext, idleMs: number): Promise<DoctorStep> {
  const { session, timeoutMs } = ctx;
  if (!session.open) return makeStep('idle', 'fail', `not tested: the connection was already closed (${describeEnd(session)})`);
  ctx.onProgress?.(`holding the connection idle for ${formatMs(idleMs)}…`);
  const pingsBefore = session.pingsReceived.length;
  await session.waitUntil(() => (session.open ? undefined : true), idleMs);
  const serverPings = session.pingsReceived.length - pingsBefore;
  const pingNote = serverPings ? `; the server pinged ${serverPings} time${serverPings === 1 ? '' : 's'} meanwhile (answered with pongs)` : '';

  if (!session.open) {
    // Silence is counted from the last frame either way, as a proxy's read timer is.
    const after = endedAt(session) - session.lastActivity;
    const secs = after / 1000;
    const how = describeEnd(session);
    const data = { cutAfterMs: after, closeCode: session.closeFrame?.code ?? null, end: session.ended?.how ?? null, serverPings };
    if (session.closeFrame) {
      const { code } = session.closeFrame;
      return makeStep('idle', 'fail', `closed after ${formatMs(after)} of silence: ${how}`, {
        explanation:
          `The server (or a gateway that speaks WebSocket) closes connections that stay quiet for about ${Math.round(secs)} s` +
          `${code === 1001 ? ' — 1001 is what Porthole’s idle_timeout sends, among others' : ''}.`,
        fix: `send something more often than every ${Math.max(1, Math.floor(secs / 2))} s (an app heartbeat, or server pings: Porthole ping_interval), or raise the idle timeout (Porthole: idle_timeout)`,
        data,
      });
    }
    const known = KNOWN_IDLE_CUTS.find(([s]) => Math.abs(s - secs) <= 3);
    const proxy = ctx.proxy;
    const nginx = proxy?.name === 'nginx';
    const rounded = Math.round(secs);
    const every = Math.max(1, Math.floor(secs / 2));
    let who: string;
    if (nginx)
      who =
        `The handshake came through nginx (${proxy.evidence}): nginx closes a proxied WebSocket when the backend sent nothing for proxy_read_timeout ` +
        `(60 s unless set${Math.abs(secs - 60) > 3 ? `; here it looks set to about ${rounded} s` : ''}).`;
    else if (proxy) who = `The handshake came through ${proxy.name} (${proxy.evidence}), whose idle timeout looks like about ${rounded} s.`;
    else who = `A proxy or load balancer in between has an idle timeout of about ${rounded} s (nginx: proxy_read_timeout, 60 s by default).`;
    return makeStep('idle', 'fail', `the connection was cut after ~${formatMs(after)} of silence: ${how}`, {
      explanation:
        `Nothing was sent either way, and after ~${secs.toFixed(1)} s something closed the connection without a close frame — the signature of a proxy’s read timeout, ` +
        `which the page sees as 1006. ${who}${known ? ` ~${rounded} s matches ${known[1]}.` : ''}`,
      fix:
        (nginx || !proxy
          ? 'raise proxy_read_timeout (and proxy_send_timeout) in the nginx location:\n    proxy_read_timeout 3600s;\n    proxy_send_timeout 3600s;\nor '
          : `raise ${proxy.name}'s idle timeout, or `) +
        `send pings more often than every ${every} s from the server (browsers answer pings but cannot send them; Porthole: ping_interval: 30s)`,
      data,
    });
  }

  // Still open: a silent middlebox may have dropped it without telling anyone; a ping finds out.
  const payload = `porthole-doctor idle ${randomBytes(4).toString('hex')}`;
  const sentAt = performance.now();
  session.ping(payload);
  const pong = await session.waitUntil(() => session.pongs.find((p) => p.payload.toString('utf8') === payload) ?? (session.open ? undefined : 'stopped'), timeoutMs);
  if (pong && pong !== 'stopped')
    return makeStep('idle', 'pass', `${formatMs(idleMs)} of silence: nothing cut the connection, and a ping then got its pong in ${formatMs(pong.at - sentAt)}${pingNote}`, {
      data: { cutAfterMs: null, serverPings },
    });
  return makeStep('idle', 'fail', `after ${formatMs(idleMs)} of silence the connection looked open but ${pong === 'stopped' ? `closed on the next ping: ${describeEnd(session)}` : 'a ping got no pong'}`, {
    explanation: 'Something in between dropped the idle connection without telling either side (a NAT or firewall that forgot it). The page would find out only when it next sends.',
    fix: 'keep the connection busy: pings from the server more often than the middlebox’s timeout (Porthole: ping_interval: 30s)',
    data: { cutAfterMs: null, serverPings },
  });
}

/** Step 9: close 1000 and read the server's answer, or report the close already seen. */
export async function closeStep(ctx: SessionContext): Promise<DoctorStep> {
  const { session, timeoutMs } = ctx;
  if (!session.open) {
    // Already reported by the step that saw it; repeating it as a failure would only add noise.
    const how = session.closeFrame ? `close ${session.closeFrame.code}` : session.ended?.how === 'fin' ? 'TCP FIN' : 'TCP reset';
    return makeStep('close', 'warn', `not tested: the server side already ended the connection (${how}, see above)`, {
      data: { closeCode: session.closeFrame?.code ?? null, end: session.ended?.how ?? null },
    });
  }
  const sentAt = performance.now();
  session.sendClose(1000);
  await session.waitUntil(() => (session.open ? undefined : true), timeoutMs);
  const data = { closeCode: session.closeFrame?.code ?? null, end: session.ended?.how ?? null };
  if (session.closeFrame) {
    const { code, reason } = session.closeFrame;
    const ms = session.closeFrame.at - sentAt;
    const said = `sent close 1000, the server answered ${code} (${describeCloseCode(code)})${reason ? ` reason "${reason}"` : ''} in ${formatMs(ms)}`;
    if (code === 1000) return makeStep('close', 'pass', said, { data });
    return makeStep('close', 'warn', said, {
      explanation: 'A server answering a close usually echoes its code (RFC 6455 §5.5.1); this one answered another. Harmless for most clients, but a sign its close handling is unusual.',
      data,
    });
  }
  if (session.ended)
    return makeStep('close', 'warn', `sent close 1000, the server ended the connection without a close frame: ${describeEnd(session)}`, {
      explanation: 'The closing handshake was not completed (RFC 6455 §7.1.2); a browser reports such a close as not clean (wasClean false, code 1006).',
      data,
    });
  return makeStep('close', 'warn', `sent close 1000, no answer in ${timeoutMs / 1000} s`, {
    explanation: 'The server ignored the close frame. A browser waits, then drops the connection and reports 1006.',
    data,
  });
}
