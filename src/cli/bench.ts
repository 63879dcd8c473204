/**
 * `porthole bench URL`: load-test a WebSocket echo endpoint (see src/toolkit/bench.ts).
 * This file only turns flags into `BenchOptions` and prints the result; bad flags exit 2.
 */
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { BENCH_DEFAULTS, BenchOptionError, runBench, type BenchResult } from '../toolkit/bench.js';
import { formatBenchReport, formatProgress } from '../toolkit/bench-report.js';
import { HEADER_BYTES } from '../toolkit/bench-payload.js';
import { abortOnSignals, collectHeader, collectSubprotocol, mergeHeaders, parseWsUrl as parseUrl } from './ws-client-options.js';

interface BenchFlags {
  connections: number;
  ramp?: number;
  size: number;
  rate?: number;
  duration?: number;
  messages?: number;
  text?: boolean;
  header?: [string, string][];
  subprotocol?: string[];
  origin?: string;
  insecure?: boolean;
  compress?: boolean;
  connectTimeout: number;
  json?: boolean;
  progress: boolean;
}

export function register(program: Command): void {
  program
    .command('bench')
    .summary('load-test a WebSocket echo endpoint: throughput, latency percentiles, errors')
    .description(
      'Open --connections WebSockets to URL and send messages that the server must echo: each connection sends the next ' +
        'message when the previous echo arrives (closed loop), or --rate messages per second whatever the server does ' +
        '(open loop, latency measured from the intended send time). Every echo is checked (length, type, sequence, ' +
        'content) and timed. Reports handshake times, round-trip latency p50/p90/p99/p99.9/max, msg/s and MiB/s, ' +
        'errors by close code or cause, and the CPU the bench itself used.',
    )
    .addArgument(new Argument('<url>', 'the WebSocket URL of an echo endpoint').argParser(parseUrl))
    .addOption(new Option('-c, --connections <n>', 'connections to open').argParser(wholeNumber(1)).default(BENCH_DEFAULTS.connections))
    .option('--ramp <n>', 'open this many connections per second (default: all at once, at most 100 handshakes in flight)', positiveNumber)
    .addOption(
      new Option('--size <bytes>', `message size in bytes, at least ${HEADER_BYTES} (sequence number and timestamp)`)
        .argParser(wholeNumber(HEADER_BYTES))
        .default(BENCH_DEFAULTS.size),
    )
    .option('--rate <n>', 'messages per second per connection, on a fixed schedule (default: closed loop)', positiveNumber)
    .option('--duration <seconds>', 'length of the run (default 10; no limit with --messages)', positiveNumber)
    .option('--messages <n>', 'stop each connection after this many round trips', wholeNumber(1))
    .addOption(new Option('--binary', 'send binary messages (the default)').conflicts('text'))
    .addOption(new Option('--text', 'send text messages (printable ASCII)').conflicts('binary'))
    .option('-H, --header <header>', 'send a handshake header "Name: value" (repeatable)', collectHeader)
    .option('-s, --subprotocol <name>', 'offer a subprotocol (repeatable, in order of preference)', collectSubprotocol)
    .option('--origin <origin>', 'send this Origin header')
    .option('--insecure', 'do not verify the TLS certificate (self-signed servers)')
    .option('--compress', 'offer permessage-deflate (RFC 7692); off by default, so the bench measures framing, not zlib')
    .addOption(
      new Option('--connect-timeout <seconds>', 'a handshake with no answer in this time fails')
        .argParser(positiveNumber)
        .default(BENCH_DEFAULTS.connectTimeoutSeconds),
    )
    .option('--json', 'print the result as one JSON document on stdout, and nothing else there')
    .option('--no-progress', 'no live progress line on stderr (shown only when stderr is a terminal)')
    .addHelpText(
      'after',
      `
URL must echo every message back unchanged, as \`porthole echo\` does. Each message carries a
sequence number and its send time in its first 16 bytes; the rest is a pattern per connection.
An echo that differs counts as PH_BENCH_MISMATCH; a message with no echo by the end (2 s grace)
as PH_BENCH_NO_ECHO. A connection the server closes counts by its close code; a refused
handshake by its HTTP status (HTTP 403) or socket error (ECONNREFUSED).

The run ends after --duration or when every connection has done --messages round trips,
whichever comes first (or when no echo came for 10 s while messages were outstanding);
then every connection gets a close 1000. msg/s counts echoes; MiB/s
counts payload bytes sent plus received. "bench CPU" is this process's user+system time as a
share of one core: above 90% the bench warns that it may have been the bottleneck.

Examples:
  porthole bench ws://127.0.0.1:9001/                            10 connections, closed loop, 10 s
  porthole bench ws://127.0.0.1:9001/ -c 100 --size 1024 --duration 30
  porthole bench ws://127.0.0.1:9001/ -c 50 --rate 100 --json > result.json
  porthole bench wss://localhost:8443/ws --insecure -s chat -H "Cookie: sid=abc"
  porthole bench ws://127.0.0.1:9001/ -c 4 --messages 1000     exactly 4000 round trips

Exit codes: 0 no errors, 1 any error counted (see "errors"), 2 bad usage.`,
    )
    .action(async (url: string, flags: BenchFlags, cmd: Command) => {
      const subprotocols = [...(flags.subprotocol ?? [])];
      const plain: [string, string][] = [];
      for (const [name, value] of flags.header ?? []) {
        // wscat habit: -H "Sec-WebSocket-Protocol: x" means -s x (sent as a header, ws would reject the server's answer).
        if (name.toLowerCase() === 'sec-websocket-protocol') {
          for (const p of value.split(',')) if (p.trim() && !subprotocols.includes(p.trim())) subprotocols.push(p.trim());
        } else plain.push([name, value]);
      }
      const headers = mergeHeaders(plain);

      const progress = flags.progress && Boolean(process.stderr.isTTY);
      const abort = abortOnSignals();

      let result: BenchResult;
      try {
        result = await runBench({
          url,
          connections: flags.connections,
          rampPerSecond: flags.ramp,
          size: flags.size,
          ratePerSecond: flags.rate,
          durationSeconds: flags.duration,
          messagesPerConnection: flags.messages,
          binary: !flags.text,
          headers,
          subprotocols,
          origin: flags.origin,
          insecure: Boolean(flags.insecure),
          compress: Boolean(flags.compress),
          connectTimeoutSeconds: flags.connectTimeout,
          signal: abort.signal,
          onProgress: progress ? (p) => process.stderr.write(`\r${formatProgress(p)}\x1b[K`) : undefined,
        });
      } catch (err) {
        if (err instanceof BenchOptionError) cmd.error(`error: ${err.message}`, { exitCode: 2, code: 'porthole.usage' });
        throw err;
      } finally {
        if (progress) process.stderr.write('\r\x1b[K');
      }

      if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else process.stdout.write(`${formatBenchReport(result).join('\n')}\n`);
      // In --json mode stdout holds only the document: warnings also go to stderr there.
      if (flags.json) for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
      const code = result.errors.total > 0 ? 1 : 0;
      process.exitCode = code;
      // Every socket is closed or cut by now; nothing should keep us alive, but never hang a benchmark script.
      setTimeout(() => process.exit(code), 1000).unref();
    });
}

function wholeNumber(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}.`);
    return n;
  };
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number > 0.');
  return n;
}

