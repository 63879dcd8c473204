/**
 * `porthole echo`: run a WebSocket echo server (see src/toolkit/echo.ts).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_MAX_PAYLOAD, startEchoServer } from '../toolkit/echo.js';

interface EchoFlags {
  host: string;
  port: number;
  compress?: boolean;
  subprotocol?: string[];
  maxPayload: number;
}

export function register(program: Command): void {
  program
    .command('echo')
    .summary('run a WebSocket echo server (for tests and proxy checks)')
    .description(
      'Run an RFC 6455 echo server: text comes back as text, binary as binary, pings are answered. ' +
        'A plain HTTP GET on any path gets a short text answer, so health checks pass.',
    )
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on; 0 picks a free one', parsePort, 0)
    .option('--compress', 'accept permessage-deflate (RFC 7692) when the client offers it')
    .option(
      '--subprotocol <name>',
      'a subprotocol the server speaks (repeatable); the first one the client offers that is listed is selected',
      collect,
    )
    .addOption(
      new Option('--max-payload <bytes>', 'largest message accepted; a bigger one closes with 1009 (message too big)')
        .argParser(parsePositiveInt)
        .default(DEFAULT_MAX_PAYLOAD, '104857600 = 100 MiB'),
    )
    .addHelpText(
      'after',
      `
Output: the first stdout line is the address it listens on, "listening on ws://127.0.0.1:PORT".
One line per connection opened or closed (with the close code and its meaning) goes to stderr.
SIGTERM or SIGINT closes every client with 1001 (going away) and exits 0.

Examples:
  porthole echo                                   listen on a free port of 127.0.0.1
  porthole echo --port 9001 --compress            fixed port, permessage-deflate on
  porthole echo --subprotocol graphql-ws --subprotocol chat
  porthole echo --max-payload 65536               refuse messages over 64 KiB with 1009

Exit codes: 0 after SIGTERM/SIGINT, 1 when it cannot listen, 2 bad usage.`,
    )
    .action(async (flags: EchoFlags) => {
      const server = await startEchoServer({
        host: flags.host,
        port: flags.port,
        compress: Boolean(flags.compress),
        subprotocols: flags.subprotocol ?? [],
        maxPayload: flags.maxPayload,
        log: (line) => process.stderr.write(`${line}\n`),
      }).catch((err: NodeJS.ErrnoException) => {
        process.stderr.write(`porthole echo: cannot listen on ${flags.host}:${flags.port}: ${err.code ?? err.message}\n`);
        process.exit(1);
      });
      process.stdout.write(`listening on ${server.url}\n`);

      const stop = (signal: NodeJS.Signals) => {
        process.stderr.write(`${signal}: closing ${server.connections} connection${server.connections === 1 ? '' : 's'} with 1001\n`);
        void server.close().then(() => process.exit(0));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError('expected a port number 0–65535.');
  return n;
}

function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a positive whole number of bytes.');
  return n;
}
