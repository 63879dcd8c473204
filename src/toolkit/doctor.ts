/**
 * `porthole doctor`: diagnose a WebSocket endpoint that fails, one layer at a
 * time, and name the fix. The steps, in order:
 *
 *  1. url          the URL, and mixed content for the page that opens it (--page-origin)
 *  2. dns, tcp     resolve the host, connect
 *  3. tls          for wss://: handshake, certificate, host name
 *  4. upgrade      the HTTP upgrade, sent by hand so every byte of the answer can be shown;
 *                  a refusal is explained (doctor-refusal.ts), with a retry where one settles it
 *  5. accept       Sec-WebSocket-Accept, Upgrade, Connection of the 101
 *  6. subprotocol  what the server selected against what was offered
 *  7. roundtrip    ping → pong (and --message → echo) on the same connection
 *  8. idle         (--idle) stay silent and catch a proxy's read timeout
 *  9. close        close 1000 and the server's answer
 *
 * A step that the next ones depend on stops the run when it fails. The first
 * failure is the diagnosis.
 */
import type { Duplex } from 'node:stream';
import { checkAccept, checkSubprotocol, switchedLine, wireLines } from './doctor-handshake.js';
import { buildUpgradeRequest, exchangeUpgrade, type UpgradeRequest, type UpgradeResponse } from './doctor-http.js';
import { connectTcp, resolveHost, startTls, type Address, type TlsResult } from './doctor-net.js';
import { detectProxy, describeFailure, diagnoseFailure, diagnoseRefusal, type Attempt, type ProbeChange } from './doctor-refusal.js';
import { closeStep, idleStep, roundTripStep, type SessionContext } from './doctor-session.js';
import { formatMs, makeStep, type DoctorStep } from './doctor-step.js';
import { checkUrl } from './doctor-url.js';
import { WireSession } from './doctor-wire.js';

export type { DoctorStep, StepName, StepStatus } from './doctor-step.js';

export const DEFAULT_STEP_TIMEOUT_MS = 10_000;
/** A certificate expiring sooner than this is worth a warning. */
const EXPIRY_WARNING_MS = 14 * 24 * 3600 * 1000;

export interface DoctorOptions {
  /** ws://, wss://, http:// or https:// (http(s) is tested as ws(s)). */
  url: string;
  /** The Origin header to send. Default: the --page-origin, else none. */
  origin?: string;
  /** Extra handshake headers, in order (`-H`). An Origin or Sec-WebSocket-Protocol here counts as --origin / -s. */
  headers?: readonly (readonly [string, string])[];
  /** Subprotocols to offer, in order of preference (`-s`). */
  subprotocols?: readonly string[];
  /** Carry on past an untrusted certificate. */
  insecure?: boolean;
  /** Trust these CA certificates (PEM) instead of the system's. */
  ca?: Buffer;
  /** Per step. Default 10 s. */
  timeoutMs?: number;
  /** Hold the connection idle this long (step 8); skipped when absent. */
  idleMs?: number;
  /** A text message to send after the ping; its echo is checked. */
  message?: string;
  /** The origin of the page that will open the socket (mixed content, Origin). */
  pageOrigin?: string;
  /** Each step as soon as it is known. */
  onStep?: (step: DoctorStep) => void;
  /** Lines about long waits ("holding the connection idle for 60 s…"). */
  onProgress?: (line: string) => void;
}

export interface DoctorReport {
  /** The URL tested (ws:// or wss://), or the input when it was unusable. */
  url: string;
  ok: boolean;
  /** 0 every step passed or warned, 1 a step failed, 2 the URL was unusable. */
  exitCode: 0 | 1 | 2;
  /** The name of the first failed step: the diagnosis. */
  diagnosis: DoctorStep['step'] | null;
  /** One line: the diagnosis and what to change, or "all good". */
  summary: string;
  steps: DoctorStep[];
}

/** Runs the checks against `opts.url`. Never throws for network trouble: that is what it reports. */
export async function runDoctor(opts: DoctorOptions): Promise<DoctorReport> {
  const steps: DoctorStep[] = [];
  const timeoutMs = opts.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
  const add = (step: DoctorStep): DoctorStep => {
    steps.push(step);
    opts.onStep?.(step);
    return step;
  };
  const finish = (url: string, stopped: boolean): DoctorReport => summarize(url, steps, stopped);

  // 1. URL
  const target = checkUrl(opts.url, opts.pageOrigin);
  add(target.step);
  const url = target.url;
  if (!url) return { ...finish(opts.url, true), exitCode: 2 };

  const extra: [string, string][] = [];
  let origin = opts.origin ?? target.pageOrigin;
  const subprotocols = [...(opts.subprotocols ?? [])];
  for (const [name, value] of opts.headers ?? []) {
    const lower = name.toLowerCase();
    if (lower === 'origin') origin = value;
    else if (lower === 'sec-websocket-protocol') {
      for (const p of value.split(',').map((v) => v.trim()))
        if (p && !subprotocols.includes(p)) subprotocols.push(p);
    } else extra.push([name, value]);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (url.protocol === 'wss:' ? 443 : 80));

  // 2. DNS
  const resolved = await resolveHost(host, timeoutMs);
  if ('error' in resolved) {
    add(
      makeStep('dns', 'fail', `${host} does not resolve: ${resolved.code ?? resolved.error}`, {
        explanation:
          resolved.code === 'ENOTFOUND'
            ? 'No DNS record exists for this name (a typo, a tunnel URL that changed, or a record not yet propagated).'
            : resolved.code === 'ETIMEOUT' || resolved.code === 'EAI_AGAIN'
              ? 'The resolver did not answer in time: the name server is unreachable or slow.'
              : resolved.error,
        fix: 'check the host name; nslookup or dig it from this machine',
        data: { code: resolved.code ?? null },
      }),
    );
    return finish(url.href, true);
  }
  const list = resolved.addresses.map((a) => a.address).join(', ');
  add(makeStep('dns', 'pass', resolved.literal ? `${host} is an IP address` : `${host} → ${list} (${formatMs(resolved.ms)})`, { data: { addresses: resolved.addresses.map((a) => a.address) } }));

  // 2. TCP
  const tcp = await connectTcp(resolved.addresses, port, timeoutMs);
  if (!('socket' in tcp)) {
    add(tcpFailure(host, port, tcp.attempts, timeoutMs));
    return finish(url.href, true);
  }
  const failedFirst = tcp.attempts.filter((a) => a.error).map((a) => `${a.address} ${a.error}`);
  add(
    makeStep('tcp', 'pass', `connected to ${tcp.address}:${port} in ${formatMs(tcp.ms)}${failedFirst.length ? ` (after ${failedFirst.join(', ')})` : ''}`, {
      data: { address: tcp.address, port, ms: tcp.ms },
    }),
  );
  let socket: Duplex = tcp.socket;

  // 3. TLS
  const secure = url.protocol === 'wss:';
  if (secure) {
    const outcome = await startTls(tcp.socket, host, { ca: opts.ca, timeoutMs });
    if ('error' in outcome) {
      tcp.socket.destroy();
      add(tlsError(outcome, url));
      return finish(url.href, true);
    }
    const step = add(tlsStep(outcome, host, opts.insecure ?? false));
    socket = outcome.socket;
    if (step.status === 'fail') {
      socket.destroy();
      return finish(url.href, true);
    }
  }

  const address: Address = { address: tcp.address, family: 0 };
  const openTransport = async (): Promise<Duplex | string> => {
    const again = await connectTcp([address], port, timeoutMs);
    if (!('socket' in again)) return `connect: ${again.attempts[0]?.error ?? 'failed'}`;
    if (!secure) return again.socket;
    const t = await startTls(again.socket, host, { ca: opts.ca, timeoutMs });
    if ('error' in t) {
      again.socket.destroy();
      return `TLS: ${t.error}`;
    }
    return t.socket;
  };
  const handshake = (s: Duplex, change: ProbeChange = {}): Promise<Attempt> => {
    const u = new URL(url.href);
    if (change.path !== undefined) u.pathname = change.path;
    const request = buildUpgradeRequest(u, {
      origin: change.origin ?? origin,
      subprotocols,
      headers: [...extra, ...(change.addHeaders ?? [])],
    });
    return exchangeUpgrade(s, request, timeoutMs).then((result) => {
      if ('status' in result && result.status === 101) return { request, result, socket: s };
      s.destroy();
      return { request, result };
    });
  };

  // 4. The upgrade
  let attempt = await handshake(socket);
  const result = attempt.result;
  let response: UpgradeResponse;
  let request: UpgradeRequest = attempt.request;
  if (!('status' in result)) {
    // Silence or a hang-up on ws:// is what a TLS port does with plain HTTP: a ClientHello settles it.
    const speaksTls = !secure && result.kind !== 'not-http' && (await probeTls(address, port, host, timeoutMs));
    const why = diagnoseFailure(result, url, timeoutMs, speaksTls);
    add(makeStep('upgrade', 'fail', why.detail, { explanation: why.explanation, fix: why.fix, wire: [...wireLines(attempt.request, undefined), `< (${describeFailure(result)})`, ...why.probes], data: { cause: why.cause } }));
    return finish(url.href, true);
  }
  if (result.status === 101) {
    response = result;
    const note = origin === undefined ? ' (no Origin sent; a browser sends its page’s: see --page-origin)' : '';
    add(makeStep('upgrade', 'pass', `${switchedLine(result)}${note}`, { wire: wireLines(attempt.request, result), data: { status: 101, ms: result.ms } }));
  } else {
    const refusal = await diagnoseRefusal(result, {
      url,
      originSent: origin,
      versionSent: attempt.request.lines.find((l) => /^sec-websocket-version:/i.test(l))?.replace(/^[^:]*:\s*/, '') ?? '13',
      hostSent: attempt.request.lines.find((l) => /^host:/i.test(l))?.replace(/^[^:]*:\s*/, ''),
      probe: async (change) => {
        const s = await openTransport();
        if (typeof s === 'string') return { error: s };
        return handshake(s, change);
      },
    });
    add(
      makeStep('upgrade', 'fail', refusal.detail, {
        explanation: refusal.explanation,
        fix: refusal.fix,
        wire: [...wireLines(attempt.request, result), ...refusal.probes],
        data: { cause: refusal.cause, status: result.status, retrySucceeded: Boolean(refusal.continueWith) },
      }),
    );
    if (!refusal.continueWith) return finish(url.href, true);
    // The retry worked: test the rest over it, so the report says whether anything else is wrong too.
    attempt = refusal.continueWith;
    response = refusal.continueWith.result;
    request = attempt.request;
  }
  socket = attempt.socket!;

  // 5, 6
  add(checkAccept(request, response));
  add(checkSubprotocol(subprotocols, response));

  // 7, 8, 9
  const session = new WireSession(socket, response.rest);
  const hostSent = request.lines.find((l) => /^host:/i.test(l))?.replace(/^[^:]*:\s*/, '') ?? url.host;
  const ctx: SessionContext = { session, timeoutMs, proxy: detectProxy(response), onProgress: opts.onProgress, hostSent };
  try {
    add(await roundTripStep(ctx, opts.message));
    if (opts.idleMs !== undefined && opts.idleMs > 0) add(await idleStep(ctx, opts.idleMs));
    add(await closeStep(ctx));
  } finally {
    session.destroy();
  }
  return finish(url.href, false);
}

async function probeTls(address: Address, port: number, host: string, timeoutMs: number): Promise<boolean> {
  const tcp = await connectTcp([address], port, timeoutMs);
  if (!('socket' in tcp)) return false;
  const t = await startTls(tcp.socket, host, { timeoutMs: Math.min(timeoutMs, 3000) });
  if ('error' in t) {
    tcp.socket.destroy();
    return false;
  }
  t.socket.destroy();
  return true;
}

function summarize(url: string, steps: DoctorStep[], stopped: boolean): DoctorReport {
  const failed = steps.find((s) => s.status === 'fail');
  const warnings = steps.filter((s) => s.status === 'warn').length;
  let summary: string;
  if (failed) {
    summary = `${failed.title} failed: ${failed.detail}${stopped ? '; the later checks need it and were not run' : ''}`;
  } else {
    const rtt = steps.find((s) => s.step === 'roundtrip')?.data?.pongMs;
    summary = `the WebSocket at ${url} works${typeof rtt === 'number' ? ` (round trip ${formatMs(rtt)})` : ''}${warnings ? `, with ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}`;
  }
  return { url, ok: !failed, exitCode: failed ? 1 : 0, diagnosis: failed?.step ?? null, summary, steps };
}

function tcpFailure(host: string, port: number, attempts: { address: string; error?: string }[], timeoutMs: number): DoctorStep {
  const codes = attempts.map((a) => a.error);
  const tried = attempts.map((a) => `${a.address}: ${a.error === 'timeout' ? `no answer in ${timeoutMs / 1000} s` : a.error}`).join(', ');
  let explanation: string;
  let fix: string;
  if (codes.every((c) => c === 'ECONNREFUSED')) {
    explanation = `The machine answered, but nothing listens on port ${port}: the server is not running, listens on another port, or only on another interface (127.0.0.1 vs 0.0.0.0).`;
    fix = `start the server, or check its port (ss -ltnp | grep :${port} on its machine)`;
  } else if (codes.includes('timeout')) {
    explanation = 'No answer at all: a firewall drops the packets, the address is wrong, or the host is down.';
    fix = 'check the address, firewalls and security groups between here and the server';
  } else if (codes.some((c) => c === 'EHOSTUNREACH' || c === 'ENETUNREACH')) {
    explanation = 'There is no route to that address from here.';
    fix = 'check the address and this machine’s network (a VPN, IPv6 without a route)';
  } else {
    explanation = 'The connection failed before any data was exchanged.';
    fix = 'check the address and port';
  }
  return makeStep('tcp', 'fail', `cannot connect to ${host}:${port} (${tried || 'no address'})`, { explanation, fix, data: { attempts } });
}

function tlsError(outcome: { error: string; code?: string }, url: URL): DoctorStep {
  const wrongProtocol = /wrong version number|packet length too long|unknown protocol|http request/i.test(outcome.error) || outcome.code === 'ERR_SSL_WRONG_VERSION_NUMBER';
  return makeStep('tls', 'fail', `TLS handshake failed: ${outcome.error}${outcome.code ? ` (${outcome.code})` : ''}`, {
    explanation: wrongProtocol
      ? 'The server answered the TLS ClientHello with something that is not TLS: it speaks plain HTTP on this port.'
      : outcome.code === 'ECONNRESET' || /socket disconnected|hang up/i.test(outcome.error)
        ? 'The server closed the connection during the TLS handshake: it is not TLS, wants SNI for another name, or refuses this client.'
        : 'The TLS handshake did not complete.',
    fix: wrongProtocol ? `use ws://${url.host}${url.pathname}${url.search}` : 'check that the port serves TLS for this host name',
    data: { code: outcome.code ?? null },
  });
}

function tlsStep(t: TlsResult, host: string, insecure: boolean): DoctorStep {
  const cert = t.cert;
  const certShort = cert ? `${cert.subject || '(no subject)'}, issued by ${cert.selfSigned ? 'itself' : cert.issuer}, valid until ${cert.validTo}` : 'no certificate';
  const base = `${t.protocol} in ${formatMs(t.ms)}; ${certShort}`;
  const wire = [
    `* ${t.protocol}, cipher ${t.cipher}, ALPN ${t.alpn || '(none)'}, handshake ${formatMs(t.ms)}`,
    ...(cert
      ? [`* subject: ${cert.subject}`, `* issuer:  ${cert.issuer}${cert.selfSigned ? ' (self-signed)' : ''}`, `* valid:   ${cert.validFrom} → ${cert.validTo}`, `* names:   ${cert.altNames || '(no subjectAltName)'}`]
      : []),
  ];
  const data = {
    protocol: t.protocol,
    cipher: t.cipher,
    subject: cert?.subject ?? null,
    issuer: cert?.issuer ?? null,
    validTo: cert?.validTo ?? null,
    selfSigned: cert?.selfSigned ?? null,
    verifyError: t.chainError ?? null,
    hostnameError: t.hostnameError ?? null,
  };
  const problems: { detail: string; explanation: string; fix: string }[] = [];
  if (t.chainError) {
    const code = t.chainError;
    const selfSigned = code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN';
    problems.push({
      detail: selfSigned ? `self-signed certificate not trusted (${code})` : `certificate not trusted (${code})`,
      explanation: selfSigned
        ? 'The certificate is self-signed: nothing vouches for it, so no browser or client trusts it unless told to. Browsers show no prompt for a WebSocket — the connection just fails with 1006.'
        : code === 'CERT_HAS_EXPIRED'
          ? 'The certificate has expired; every client refuses it.'
          : code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'
            ? 'The certificate was issued by a CA this machine does not know, or the server does not send the intermediate certificate(s) with it.'
            : 'The certificate chain does not verify.',
      fix: selfSigned
        ? 'use a certificate from a public CA (Let’s Encrypt), or for testing trust this one: --ca cert.pem here (and import it in the browser); --insecure skips the check for the doctor only'
        : code === 'CERT_HAS_EXPIRED'
          ? 'renew the certificate'
          : 'serve the full chain (leaf + intermediates); for a private CA pass it with --ca FILE; --insecure skips the check for the doctor only',
    });
  }
  if (t.hostnameError)
    problems.push({
      detail: `the certificate does not cover ${host}`,
      explanation: `${t.hostnameError}. Clients refuse a certificate issued for another name.`,
      fix: `get a certificate whose subjectAltName includes ${host}, or connect with the name it covers`,
    });
  if (cert && cert.expiresInMs < 0 && !problems.some((p) => /expired/.test(p.explanation)))
    problems.push({ detail: `the certificate expired on ${cert.validTo}`, explanation: 'Every client refuses an expired certificate.', fix: 'renew the certificate' });

  if (problems.length) {
    const [first] = problems;
    const detail = `${problems.map((p) => p.detail).join('; ')}: ${certShort}`;
    if (insecure)
      return makeStep('tls', 'warn', `${detail} (accepted because of --insecure)`, {
        explanation: `${first.explanation} --insecure goes on anyway; a browser would not.`,
        fix: first.fix,
        wire,
        data,
      });
    return makeStep('tls', 'fail', detail, { explanation: problems.map((p) => p.explanation).join(' '), fix: first.fix, wire, data });
  }
  if (cert && cert.expiresInMs < EXPIRY_WARNING_MS) {
    const days = cert.expiresInMs / (24 * 3600 * 1000);
    return makeStep('tls', 'warn', `${base}; it expires in ${days < 1 ? `${Math.max(0, Math.round(days * 24))} h` : `${Math.floor(days)} days`}`, {
      explanation: 'The certificate is valid but expires soon; when it does, every wss:// connection fails.',
      fix: 'renew it (automate renewal: certbot renew, Caddy)',
      wire,
      data,
    });
  }
  return makeStep('tls', 'pass', base, { wire, data });
}
