/**
 * `porthole doctor URL`: diagnose a WebSocket endpoint (see src/toolkit/doctor.ts).
 * This file only turns flags into `DoctorOptions` and prints the report; bad flags exit 2.
 */
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_STEP_TIMEOUT_MS, runDoctor } from '../toolkit/doctor.js';
import { formatStep, formatSummary } from '../toolkit/doctor-report.js';
import { parseTarget } from '../toolkit/doctor-url.js';
import { describeTunnelEngine } from '../gateway/native-binding.js';
import { collectHeader, collectSubprotocol, readFileArg } from './ws-client-options.js';

interface DoctorFlags {
  header?: [string, string][];
  subprotocol?: string[];
  origin?: string;
  pageOrigin?: string;
  insecure?: boolean;
  ca?: Buffer;
  timeout: number;
  idle?: number;
  message?: string;
  json?: boolean;
  verbose?: boolean;
}

export function register(program: Command): void {
  program
    .command('doctor')
    .summary('diagnose a failing WebSocket endpoint and name the fix')
    .description(
      'Connect to URL one layer at a time — DNS, TCP, TLS, the HTTP upgrade, the 101, a ping, an idle stretch, the close — ' +
        'print each step with ✓ (good), ✗ (failed) or ! (warning), and explain anything wrong: which proxy dropped the Upgrade ' +
        'header and the nginx lines that fix it, an Origin check (retried with the server’s own origin), ngrok’s interstitial ' +
        'page, a wrong path, a backend that is down, an idle timeout that cuts quiet connections.',
    )
    .addArgument(new Argument('<url>', 'the WebSocket URL (ws://, wss://; http:// and https:// are tested as ws:// and wss://)').argParser(parseUrl))
    .option('--origin <origin>', 'send this Origin header (default: --page-origin, else none)', parseOrigin)
    .option('--page-origin <url>', 'the origin of the page that will open the socket (checks mixed content; sent as Origin)', parsePageOrigin)
    .option('-H, --header <header>', 'send a handshake header "Name: value" (repeatable)', collectHeader)
    .option('-s, --subprotocol <name>', 'offer a subprotocol and require one to be selected (repeatable)', collectSubprotocol)
    .option('--insecure', 'carry on past an untrusted TLS certificate (reported as a warning)')
    .option('--ca <file>', 'trust the CA certificate(s) in this PEM file', readFileArg)
    .addOption(new Option('--timeout <seconds>', 'time allowed for each step').argParser(parsePositiveSeconds).default(DEFAULT_STEP_TIMEOUT_MS / 1000))
    .option('--idle <seconds>', 'hold the connection silent this long and report whether something cuts it', parsePositiveSeconds)
    .option('--message <text>', 'send this text message after the ping and check that it is echoed')
    .option('--json', 'print the report as JSON: {url, ok, exitCode, diagnosis, summary, steps: [{step, ok, status, detail, fix?, …}]}')
    .option('-v, --verbose', 'also show the bytes exchanged for steps that passed')
    .addHelpText(
      'after',
      `
What it checks, in order (a failure stops the steps that depend on it; the first failure is the diagnosis):
  1 URL           the scheme; with --page-origin, mixed content (a ws:// socket for an https:// page)
  2 DNS, TCP      the addresses the host resolves to; connect time, refused or unanswered
  3 TLS           (wss://) protocol, certificate subject, issuer, expiry, host name; self-signed explained
  4 HTTP upgrade  the handshake, written by hand; every byte of the answer shown. A 200/30x/404/400/403/426/5xx
                  is explained: a proxy that dropped Upgrade (with the nginx lines), a wrong path, an Origin check
                  (retried with the server's own origin), ngrok's interstitial, a backend that is down
  5 Accept        Sec-WebSocket-Accept matches the key sent (RFC 6455 §4.2.2), Upgrade and Connection present
  6 Subprotocol   what the server selected against -s (a browser fails a mismatch with 1006)
  7 Round trip    ping → pong time on the same connection; --message → echo
  8 Idle          (--idle) stay silent and catch a proxy's read timeout (nginx: proxy_read_timeout 60s)
  9 Close         close 1000 and the code the server answers with

Examples:
  porthole doctor wss://example.com/socket
  porthole doctor https://agent.ngrok-free.app/_stcore/stream --page-origin https://app.example.com
  porthole doctor ws://127.0.0.1:8080/ws --idle 75               does something cut it after 60 s of silence?
  porthole doctor ws://127.0.0.1:6080/websockify -s binary       require the server to select "binary"
  porthole doctor wss://localhost:8443/ --ca cert.pem --message hello
  porthole doctor ws://127.0.0.1:8080/ws --json | jq .diagnosis

Exit codes:
  0  every step passed (warnings allowed)
  1  a step failed: the first failed step is the diagnosis
  2  bad usage (bad URL, malformed header or option, unreadable file)`,
    )
    .action(async (url: string, flags: DoctorFlags) => {
      const json = Boolean(flags.json);
      if (!json) process.stdout.write(`porthole doctor ${url}\n\n`);
      const report = await runDoctor({
        url,
        origin: flags.origin,
        pageOrigin: flags.pageOrigin,
        headers: flags.header,
        subprotocols: flags.subprotocol,
        insecure: Boolean(flags.insecure),
        ca: flags.ca,
        timeoutMs: flags.timeout * 1000,
        idleMs: flags.idle === undefined ? undefined : flags.idle * 1000,
        message: flags.message,
        onStep: json ? undefined : (step) => process.stdout.write(`${formatStep(step, Boolean(flags.verbose))}\n`),
        onProgress: json ? undefined : (line) => process.stderr.write(`  … ${line}\n`),
      });
      // Which tunnel engine a gateway of this install uses: the first question when tunnels misbehave here.
      const engine = describeTunnelEngine();
      if (json) process.stdout.write(`${JSON.stringify({ ...report, tunnelEngine: engine.engine }, null, 2)}\n`);
      else {
        process.stdout.write(`\n${formatSummary(report)}\n`);
        process.stdout.write(`this porthole's WebSocket tunnels: ${engine.line}\n`);
        if (report.ok && flags.idle === undefined)
          process.stdout.write('tip: add --idle 75 to see whether a proxy cuts connections that stay quiet for a minute\n');
      }
      process.exitCode = report.exitCode;
    });
}

function parseUrl(value: string): string {
  const parsed = parseTarget(value);
  if ('error' in parsed) throw new InvalidArgumentError(`${parsed.error}.`);
  return value;
}

function parseOrigin(value: string): string {
  if (/[\r\n\0]/.test(value) || !value.trim()) throw new InvalidArgumentError('expected an origin like https://app.example.com (no line breaks).');
  return value.trim();
}

function parsePageOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected the page’s origin, like https://app.example.com.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('expected an http:// or https:// origin.');
  return url.origin;
}

function parsePositiveSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number of seconds greater than 0.');
  return n;
}

