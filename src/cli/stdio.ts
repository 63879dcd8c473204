/**
 * `porthole stdio`: a program that speaks lines on stdin/stdout, served over
 * WebSocket (websocketd's job; an MCP server for a remote client). See
 * src/toolkit/stdio-server.ts.
 */
import { Command, Option } from 'commander';
import { formatHostPort, type HostPort } from '../config/host-port.js';
import { startLogger } from '../log/logger.js';
import { startStdioServer } from '../toolkit/stdio-server.js';
import { allowedOriginOption, closeOnSignal, parseCount, parseListen, parsePositive, parseSeconds, serverNameOption } from './server-options.js';

interface StdioFlags {
  shared?: boolean;
  binary?: boolean;
  maxProcesses: number;
  maxMessage: number;
  linesPerSecond: number;
  killGrace: number;
  idleTimeout: number;
  heartbeat: number;
  allowedOrigin: string[];
  serverName: string[];
  name: string;
  logFormat: 'auto' | 'json' | 'text';
}

export function register(program: Command): void {
  program
    .command('stdio')
    .summary('serve a stdin/stdout program over WebSocket, a process per connection (websocketd; MCP servers)')
    .description(
      'Listen on [HOST:]PORT; every WebSocket connection starts CMD ARGS… (no shell) in a process group of its own ' +
        'with a clean environment: each text message is written to its stdin as a line, each line of its stdout ' +
        'comes back as a text message, its stderr goes to porthole\'s stderr. Closing the WebSocket stops the ' +
        'process and everything it started; the process ending closes the WebSocket with its exit status.',
    )
    .argument('<listen>', '[HOST:]PORT to listen on (HOST defaults to 127.0.0.1; PORT 0 picks a free one)', parseListen)
    .argument('<command...>', 'the program and its arguments, after --')
    .option('--shared', 'one process for every connection: each client\'s lines go to it, its lines go to every client (started with the first connection, stopped after the last)')
    .option('--binary', 'raw bytes both ways: stdout as binary messages as it is read, every message to stdin as it is (no newline added)')
    .addOption(new Option('--max-processes <n>', 'processes at once (with --shared: connections); the next connection is closed with 1013, PH_ERR_STDIO_LIMIT').argParser(parsePositive).default(16))
    .addOption(new Option('--max-message <bytes>', 'largest message either way: a bigger one from a client closes it with 1009; a longer stdout line is sent in pieces').argParser(parsePositive).default(1024 * 1024, '1 MiB'))
    .addOption(new Option('--lines-per-second <n>', 'messages per second each way (0: no limit); beyond it the sender is paused, nothing is dropped').argParser(parseCount).default(1000))
    .addOption(new Option('--kill-grace <seconds>', 'after SIGTERM, how long before SIGKILL').argParser(parseSeconds).default(5))
    .addOption(new Option('--idle-timeout <seconds>', 'close a connection with 1001 and stop its process after this long without a message either way (0: never)').argParser(parseSeconds).default(3600))
    .addOption(new Option('--heartbeat <seconds>', 'ping every client this often (0: never)').argParser(parseSeconds).default(0))
    .option('--name <name>', 'the name in log lines and close reasons', 'stdio')
    .addOption(allowedOriginOption('connect'))
    .addOption(serverNameOption())
    .addOption(new Option('--log-format <format>', 'log lines on stderr').choices(['auto', 'json', 'text']).default('auto'))
    .addHelpText(
      'after',
      `
Output: the first stdout line is "listening on http://HOST:PORT" (the WebSocket
URL is the same with ws://). Each stderr line of a process goes to stderr as
"[NAME PID] line"; one log line per connection opened, refused or closed.

What a client sees:
  the process exits 0               close 1000
  it exits with code 3              close 1011 "PH_ERR_STDIO_EXIT: NAME: exit code 3: <its last stderr line>"
  it is killed by a signal          close 1011 "PH_ERR_STDIO_EXIT: NAME: killed by SIGKILL…"
  the command cannot be started     close 1011, PH_ERR_STDIO_SPAWN
  --max-processes already running   close 1013, PH_ERR_STDIO_LIMIT (try again later)
  a message over --max-message      close 1009
  a page of another origin          close 1008, PH_ERR_ORIGIN_REFUSED (see --allowed-origin)
  a Host not this server's          close 1008, PH_ERR_HOST_REFUSED (see --server-name)
  no message for --idle-timeout     close 1001, its process stopped
  SIGTERM / SIGINT                  close 1001, every process stopped, then exit 0
A subprotocol the client offers is accepted (its first one): the MCP SDK
offers "mcp". Closing the WebSocket closes the process's stdin, then sends
SIGTERM to its process group (and to descendants that left it, found by the
PORTHOLE_RUN marker in their environment), SIGKILL after --kill-grace.

The environment is clean, as for supervised apps: PATH, HOME, USER, LANG,
TERM, TZ…, plus APP_NAME, BASE_PATH, PORTHOLE_RUN and, per connection,
REMOTE_ADDR, REMOTE_PORT and QUERY_STRING (websocketd's names). Nothing else
of porthole's environment (tokens, keys) reaches the program.

Output buffering: most programs hold their output in a buffer when stdout is a
pipe, so a line reaches the client only when the buffer fills. Ask for line
buffering: python3 -u, sed -u, grep --line-buffered, or stdbuf -oL CMD (tr,
awk, most C programs); node and cat write at once.

Examples:
  porthole stdio 8080 -- cat
      an echo server: every line comes back (try: porthole connect ws://127.0.0.1:8080/)
  porthole stdio 8080 -- python3 -u ./count.py
      a line program; -u so Python does not hold its output in a buffer
  porthole stdio 127.0.0.1:3001 -- npx -y @modelcontextprotocol/server-everything
      an MCP server over WebSocket: the TypeScript SDK's WebSocketClientTransport
      connects to ws://127.0.0.1:3001/
  porthole stdio 8080 --shared -- tail -F /var/log/syslog
      one process, every client sees the same lines
  porthole stdio 8080 -- stdbuf -oL tr a-z A-Z
      every line upper-cased, as soon as it is written
  porthole stdio 8080 --binary -- gzip -c
      bytes in, bytes out (gzip writes when its buffer fills)
  porthole stdio 8080 --allowed-origin https://app.example.com -- ./repl
      pages of https://app.example.com may connect

Exit codes: 0 after SIGTERM/SIGINT, 1 when it cannot listen, 2 bad usage.`,
    )
    .action(async (listen: HostPort, command: string[], flags: StdioFlags) => {
      const stopLog = startLogger({ format: flags.logFormat, quietRequests: false, write: (line) => process.stderr.write(`${line}\n`) });
      const server = await startStdioServer({
        host: listen.host,
        port: listen.port,
        command,
        name: flags.name,
        shared: Boolean(flags.shared),
        binary: Boolean(flags.binary),
        maxProcesses: flags.maxProcesses,
        maxMessage: flags.maxMessage,
        linesPerSecond: flags.linesPerSecond,
        killGraceMs: flags.killGrace * 1000,
        idleMs: flags.idleTimeout * 1000,
        heartbeatMs: flags.heartbeat * 1000,
        allowedOrigins: flags.allowedOrigin.length ? flags.allowedOrigin : undefined,
        serverNames: flags.serverName,
      }).catch((err: NodeJS.ErrnoException) => {
        process.stderr.write(`porthole stdio: cannot listen on ${formatHostPort(listen)}: ${err.code ?? err.message}\n`);
        process.exit(1);
      });
      process.stdout.write(`listening on ${server.url}\n`);
      process.stderr.write(`running ${command.join(' ')} for ${flags.shared ? 'all connections (shared)' : 'each connection'}\n`);
      closeOnSignal(server, stopLog);
    });
}
