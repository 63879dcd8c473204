/**
 * `porthole connect URL`: a wscat/websocat-style client (see src/toolkit/connect.ts).
 * This file only turns flags into `ConnectOptions`; bad flags exit 2.
 */
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_WAIT_MS,
  MAX_REDIRECTS,
  runConnect,
  type OutgoingMessage,
} from '../toolkit/connect.js';
import { parseHex } from '../toolkit/payload.js';
import { abortOnSignals, collectHeader, collectSubprotocol, mergeHeaders, parseWsUrl as parseUrl, readFileArg } from './ws-client-options.js';

interface ConnectFlags {
  header?: [string, string][];
  subprotocol?: string[];
  origin?: string;
  auth?: string;
  insecure?: boolean;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  compress?: boolean;
  execute?: string[];
  binaryHex?: Buffer;
  binaryFile?: Buffer;
  wait: number;
  location?: boolean;
  pipe?: boolean;
  showPing?: boolean;
  connectTimeout: number;
}

export function register(program: Command): void {
  program
    .command('connect')
    .summary('open a WebSocket and talk to it (like wscat / websocat)')
    .description(
      'Open a WebSocket to URL and exchange messages with it: interactively, with -x, or line by line with --pipe. ' +
        'Says what was negotiated, and how and why the connection closed; when the handshake is refused, prints ' +
        'the HTTP status, headers and the first 500 bytes of the body (what a proxy answered).',
    )
    .addArgument(new Argument('<url>', 'the WebSocket URL').argParser(parseUrl))
    .option('-H, --header <header>', 'send a handshake header "Name: value" (repeatable)', collectHeader)
    .option('-s, --subprotocol <name>', 'offer a subprotocol (repeatable, in order of preference)', collectSubprotocol)
    .option('--origin <origin>', 'send this Origin header')
    .option('--auth <user:pass>', 'HTTP Basic authentication', parseAuth)
    .option('--insecure', 'do not verify the TLS certificate (self-signed servers)')
    .option('--ca <file>', 'trust the CA certificate(s) in this PEM file', readFileArg)
    .option('--cert <file>', 'client certificate (PEM) for mutual TLS; needs --key', readFileArg)
    .option('--key <file>', 'private key (PEM) of --cert', readFileArg)
    .option('--compress', 'offer permessage-deflate (RFC 7692)')
    .option('-x, --execute <message>', 'send this text message after connecting (repeatable), then close', collect)
    .option('--binary-hex <hex>', 'send one binary message given as hex (00ff10, "00 ff 10", 0x00ff10)', parseHexFlag)
    .option('--binary-file <file>', "send one binary message with this file's bytes", readFileArg)
    .addOption(
      new Option('--wait <seconds>', 'after the input ends (-x sent, stdin closed), wait this long for answers')
        .argParser(parseSeconds)
        .default(DEFAULT_WAIT_MS / 1000),
    )
    .option('-L, --location', `follow 301/302/303/307/308 redirects of the handshake (at most ${MAX_REDIRECTS})`)
    .option('--pipe', 'line-per-message mode for scripts (see below)')
    .option('--show-ping', 'print pings and pongs received')
    .addOption(
      new Option('--connect-timeout <seconds>', 'give up when the handshake gets no answer in this time')
        .argParser(parseSeconds)
        .default(DEFAULT_CONNECT_TIMEOUT_MS / 1000),
    )
    .addHelpText(
      'after',
      `
URL is ws://, wss://, http:// or https:// (http becomes ws); a bare host:port/path means ws://.

Modes:
  interactive (default)  each line typed is sent as a text message; received messages print on
                         stdout as "< text" (binary: "< binary N bytes: HEX"). Commands:
                           /ping [data]   /pong [data]   /binary HEX   /close [CODE [REASON]]   /quit
                         "//text" sends "/text". Without a terminal, stdin lines are read the same way.
  -x, --binary-*         send these after the connection opens (-x messages first, then
                         --binary-hex, then --binary-file); close once every message got an answer
                         (counted one for one) or after --wait, whichever comes first.
  --pipe                 for scripts: each stdin line is one text message (-x ones go first); each
                         received message is exactly one stdout line: text as is, with CR and LF
                         inside it written as \\r and \\n; binary as 0x and lowercase hex (0x00ff10).
                         Nothing else goes to stdout. When stdin ends it closes as for -x.

Status lines (connected, negotiated subprotocol and extensions, pings, the close code and its
meaning) go to stderr; in --pipe mode only problems do.

Examples:
  porthole connect ws://127.0.0.1:9001/                        interactive session
  porthole connect wss://example.com/ws -H "Cookie: sid=abc" --origin https://example.com
  porthole connect ws://127.0.0.1:9001/ -x hello -x world      send two messages, print the answers
  porthole connect ws://127.0.0.1:9001/ --binary-hex 00ff10    send one binary message
  porthole connect wss://localhost:8443/ --insecure -s graphql-ws
  printf 'a\\nb\\n' | porthole connect ws://127.0.0.1:9001/ --pipe > answers.txt
  porthole connect http://localhost:8080/app -L                follow the redirect to the real path

Exit codes:
  0  normal close: 1000, or 1001/1005 (or the code we sent) when we closed first
  1  the handshake failed (refused, redirect not followed, TLS, unreachable), 1006, any other code
  2  bad usage (bad URL, malformed header or subprotocol, unreadable file)`,
    )
    .action(async (url: string, flags: ConnectFlags, cmd: Command) => {
      if (flags.cert && !flags.key) cmd.error('error: --cert needs --key', { exitCode: 2, code: 'porthole.usage' });
      if (flags.key && !flags.cert) cmd.error('error: --key needs --cert', { exitCode: 2, code: 'porthole.usage' });

      const execute: OutgoingMessage[] = (flags.execute ?? []).map((data) => ({ binary: false, data }));
      if (flags.binaryHex) execute.push({ binary: true, data: flags.binaryHex });
      if (flags.binaryFile) execute.push({ binary: true, data: flags.binaryFile });

      const headers = mergeHeaders(flags.header ?? []);

      const abort = abortOnSignals();
      // `| head -1` closes our stdout: stop cleanly instead of dying on EPIPE.
      process.stdout.on('error', () => abort.abort());

      const code = await runConnect(
        {
          url,
          headers,
          subprotocols: flags.subprotocol ?? [],
          origin: flags.origin,
          auth: flags.auth,
          insecure: Boolean(flags.insecure),
          ca: flags.ca,
          cert: flags.cert,
          key: flags.key,
          compress: Boolean(flags.compress),
          followRedirects: Boolean(flags.location),
          execute,
          mode: flags.pipe ? 'pipe' : execute.length ? 'script' : 'interactive',
          waitMs: flags.wait * 1000,
          connectTimeoutMs: flags.connectTimeout * 1000,
          showPing: Boolean(flags.showPing),
          signal: abort.signal,
        },
        { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, tty: Boolean(process.stdin.isTTY && process.stdout.isTTY) },
      );
      process.exitCode = code;
      // stdin may still be open (the server closed first); it must not keep us alive.
      process.stdin.destroy();
      setTimeout(() => process.exit(code), 1000).unref();
    });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function parseAuth(value: string): string {
  if (!value.includes(':')) throw new InvalidArgumentError('expected user:pass.');
  return value;
}

function parseHexFlag(value: string): Buffer {
  const data = parseHex(value);
  if (!data) throw new InvalidArgumentError('expected hex bytes, e.g. 00ff10.');
  return data;
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of seconds (0 or more).');
  return n;
}

