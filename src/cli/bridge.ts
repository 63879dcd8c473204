/**
 * `porthole bridge`: a standalone WebSocket→TCP bridge, websockify's job
 * (see src/toolkit/bridge-server.ts).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatHostPort, parseHostPort, type HostPort } from '../config/host-port.js';
import { parseTokenRedisUrl, parseWebsockifyRedisSource, storeLabel, type RedisTokenStore } from '../config/token-redis.js';
import { startLogger } from '../log/logger.js';
import { startBridgeServer } from '../toolkit/bridge-server.js';
import { allowedOriginOption, closeOnSignal, parseListen, parseSeconds, serverNameOption } from './server-options.js';

interface BridgeFlags {
  web?: string;
  tokenFile?: string;
  tokenRedis?: string;
  tokenNamespace?: string;
  tokenPlugin?: string;
  tokenSource?: string;
  textAsBinary?: boolean;
  logRequests?: boolean;
  heartbeat: number;
  idleTimeout: number;
  connectTimeout: number;
  allowedOrigin: string[];
  serverName: string[];
  logFormat: 'auto' | 'json' | 'text';
}

export function register(program: Command): void {
  program
    .command('bridge')
    .summary('bridge WebSocket connections to a TCP service (websockify: noVNC to a VNC server)')
    .description(
      'Listen on [HOST:]PORT and bridge every WebSocket connection to TARGET_HOST:PORT over TCP: ' +
        'each binary message is written to TCP, each TCP read comes back as a binary message. ' +
        'The "binary" subprotocol is selected when the client offers it (as websockify does). ' +
        'Plain HTTP GETs are served from --web DIR (noVNC\'s pages), or answered 426.',
    )
    .argument('<listen>', '[HOST:]PORT to listen on (HOST defaults to 127.0.0.1; PORT 0 picks a free one)', parseListen)
    .argument('[target]', 'TARGET_HOST:PORT to connect each WebSocket to (not needed with --token-file or --token-redis)', parseTarget)
    .option('--web <dir>', "serve static files from this directory for plain GETs (/ is index.html, or noVNC's vnc.html)")
    .option('--token-file <file>', 'pick the target by the "token" query parameter (or cookie) from lines "token: host:port" in this file (or every file of a directory); re-read when it changes')
    .option('--token-redis <url>', 'pick the target by the "token" query parameter (or cookie) from Redis: the key TOKEN holds "host:port" or JSON {"host": …, "port": …} (websockify\'s TokenRedis); redis://[:PASSWORD@]HOST[:PORT][/DB]')
    .option('--token-namespace <prefix>', 'with --token-redis: look tokens up under the key PREFIX:TOKEN (websockify\'s TokenRedis namespace)')
    .option('--token-plugin <name>', 'websockify\'s spelling: TokenFile (or ReadOnlyTokenFile) is --token-file, TokenRedis is --token-redis; with --token-source')
    .option('--token-source <source>', 'websockify\'s spelling: the file of --token-plugin TokenFile, or TokenRedis\'s HOST[:PORT[:DB[:PASSWORD[:NAMESPACE]]]] (a redis:// URL works too)')
    .option('--text-as-binary', 'pass the UTF-8 bytes of text messages to TCP (default: close with 1003)')
    .option('--log-requests', 'also log a line per plain HTTP request (each --web file); default: connections only')
    .addOption(new Option('--heartbeat <seconds>', 'ping every client this often (0: never)').argParser(parseSeconds).default(0))
    .addOption(new Option('--idle-timeout <seconds>', 'close a connection with 1001 after this long without traffic either way (0: never)').argParser(parseSeconds).default(3600))
    .addOption(new Option('--connect-timeout <seconds>', 'give up connecting to the target after this long (close 1014)').argParser(parseSeconds).default(5))
    .addOption(allowedOriginOption('open a WebSocket'))
    .addOption(serverNameOption("a tunnel's; "))
    .addOption(new Option('--log-format <format>', 'log lines on stderr').choices(['auto', 'json', 'text']).default('auto'))
    .addHelpText(
      'after',
      `
Output: the first stdout line is "listening on http://HOST:PORT" (a WebSocket URL
is the same with ws://). One log line per connection opened, refused or closed
(with bytes and messages each way, the close code and who closed) goes to stderr;
plain HTTP requests (the --web files) are logged only with --log-requests.

What a client sees:
  target unreachable        handshake completed, then close 1014 with a reason naming the target
  target closes TCP         close 1000
  unknown or missing token  close 1008 with the reason
  token Redis down or slow  close 1013 "PH_ERR_TOKEN_STORE: …" within 1 s
  a page of another origin  close 1008, PH_ERR_ORIGIN_REFUSED (see --allowed-origin)
  a Host not the bridge's   421 for pages, close 1008 for WebSockets, PH_ERR_HOST_REFUSED
                            (see --server-name); a malformed Host: 400 PH_ERR_BAD_HOST
  a text message            close 1003 (unless --text-as-binary)
  SIGTERM / SIGINT          close 1001, then the process exits 0
Closing the WebSocket ends the TCP connection (the target sees EOF). A slow
client pauses reading from the target (1 MiB buffered at most per connection).

Who may connect: a VNC server without a password is one WebSocket away from
any web page you visit, so the bridge refuses
  - an upgrade whose Origin is not the bridge's own (cross-site WebSocket
    hijacking); a client that sends no Origin (not a browser) is allowed.
    --allowed-origin ORIGIN admits pages of ORIGIN (e.g. noVNC served by
    another web server), --allowed-origin '*' any page. Pages served by --web
    need no Origin check.
  - on a loopback address, a request or upgrade whose Host is not localhost,
    *.localhost, 127.x.x.x, [::1], this machine's name or addresses, or a
    --server-name (DNS rebinding: a page on evil.example whose name now points
    at 127.0.0.1). On other addresses --server-name, when given, restricts
    Host the same way.

Token file (websockify's TokenFile format):
  # token: host:port
  desk1: 127.0.0.1:5901
  desk2: 10.0.0.7:5900
  then connect to ws://HOST:PORT/websockify?token=desk1

Tokens in Redis (websockify's TokenRedis format): one key per token, read on
every connection (a deleted key stops working at once), its value
  127.0.0.1:5901                      or JSON {"host": "127.0.0.1:5901"}
  or {"host": "10.0.0.7", "port": 5900}
  redis-cli SET desk1 127.0.0.1:5901
  porthole bridge 6080 --token-redis redis://:PASSWORD@127.0.0.1:6379/0
  porthole bridge 6080 --token-plugin TokenRedis --token-source 127.0.0.1:6379:0::vnc
      websockify's spelling: keys vnc:desk1… (a password in the command line
      is visible to other users in ps; prefer a config file's bridge_token_redis)

Examples:
  porthole bridge 6080 localhost:5900 --web /usr/share/novnc
      noVNC on http://127.0.0.1:6080/vnc.html, bridged to the VNC server on :5900
  porthole bridge 0.0.0.0:6080 --token-file /etc/porthole/vnc-tokens --heartbeat 30
  porthole bridge 127.0.0.1:0 127.0.0.1:22 --text-as-binary
  porthole bridge 6080 localhost:5900 --allowed-origin https://novnc.example.com
      noVNC's pages served by https://novnc.example.com open ws://127.0.0.1:6080/
  porthole bridge 6080 localhost:5900 --web /usr/share/novnc --server-name desk.ts.example
      also reachable as http://desk.ts.example:6080/vnc.html (a name pointing here)

Exit codes: 0 after SIGTERM/SIGINT, 1 when it cannot listen, 2 bad usage
(a malformed HOST:PORT, no target and no --token-file or --token-redis, a
--web or --token-file that does not exist, a malformed --token-redis).`,
    )
    .action(async (listen: HostPort, target: HostPort | undefined, flags: BridgeFlags, cmd: Command) => {
      if (flags.tokenPlugin !== undefined || flags.tokenSource !== undefined) {
        if (flags.tokenPlugin === undefined || flags.tokenSource === undefined) cmd.error('error: --token-plugin and --token-source go together', { exitCode: 2 });
        if (flags.tokenFile || flags.tokenRedis) cmd.error('error: --token-plugin is websockify\'s spelling of --token-file and --token-redis: give one of them', { exitCode: 2 });
        const plugin = flags.tokenPlugin!.replace(/^websockify\.token_plugins\./, '');
        if (plugin === 'TokenFile' || plugin === 'ReadOnlyTokenFile') flags.tokenFile = flags.tokenSource;
        else if (plugin === 'TokenRedis') flags.tokenRedis = flags.tokenSource;
        else cmd.error(`error: --token-plugin ${flags.tokenPlugin}: porthole bridge knows TokenFile, ReadOnlyTokenFile and TokenRedis`, { exitCode: 2 });
      }
      const sources = [target && 'TARGET_HOST:PORT', flags.tokenFile !== undefined && '--token-file', flags.tokenRedis !== undefined && '--token-redis'].filter(Boolean);
      if (sources.length === 0) cmd.error('error: give a TARGET_HOST:PORT or --token-file (or --token-redis)', { exitCode: 2 });
      if (sources.length > 1) cmd.error(`error: give one of ${sources.join(' and ')}, not both (the token picks the target)`, { exitCode: 2 });
      if (flags.tokenNamespace !== undefined && flags.tokenRedis === undefined) cmd.error('error: --token-namespace goes with --token-redis', { exitCode: 2 });
      let tokenRedis: RedisTokenStore | undefined;
      if (flags.tokenRedis !== undefined) {
        const parsed = flags.tokenRedis.includes('://') ? parseTokenRedisUrl(flags.tokenRedis) : parseWebsockifyRedisSource(flags.tokenRedis);
        if (typeof parsed === 'string') cmd.error(`error: --token-redis: ${parsed}`, { exitCode: 2 });
        tokenRedis = parsed as RedisTokenStore;
        if (flags.tokenNamespace !== undefined) {
          if (tokenRedis.namespace !== undefined) cmd.error('error: the namespace is in --token-source already; drop --token-namespace', { exitCode: 2 });
          tokenRedis = { ...tokenRedis, namespace: flags.tokenNamespace };
        }
      }
      const web = flags.web ? resolve(flags.web) : undefined;
      if (web && !isKind(web, 'dir')) cmd.error(`error: --web ${flags.web}: no such directory`, { exitCode: 2 });
      const tokenFile = flags.tokenFile ? resolve(flags.tokenFile) : undefined;
      if (tokenFile && !isKind(tokenFile, 'any')) cmd.error(`error: --token-file ${flags.tokenFile}: no such file or directory`, { exitCode: 2 });

      // One line per connection, as promised: a noVNC page load is dozens of files.
      const stopLog = startLogger({ format: flags.logFormat, quietRequests: !flags.logRequests, write: (line) => process.stderr.write(`${line}\n`) });
      const server = await startBridgeServer({
        host: listen.host,
        port: listen.port,
        target,
        tokenFile,
        tokenRedis,
        web,
        textAsBinary: Boolean(flags.textAsBinary),
        heartbeatMs: flags.heartbeat * 1000,
        idleMs: flags.idleTimeout * 1000,
        connectMs: flags.connectTimeout * 1000,
        allowedOrigins: flags.allowedOrigin.length ? flags.allowedOrigin : undefined,
        serverNames: flags.serverName,
      }).catch((err: NodeJS.ErrnoException) => {
        process.stderr.write(`porthole bridge: cannot listen on ${formatHostPort(listen)}: ${err.code ?? err.message}\n`);
        process.exit(1);
      });
      process.stdout.write(`listening on ${server.url}\n`);
      const targets = target
        ? formatHostPort(target)
        : tokenRedis
          ? `the targets in ${storeLabel(tokenRedis)}${tokenRedis.namespace ? ` under ${tokenRedis.namespace}:` : ''}`
          : `the targets in ${tokenFile}`;
      process.stderr.write(`bridging WebSocket connections to ${targets}${web ? `, serving ${web}` : ''}\n`);

      closeOnSignal(server, stopLog);
    });
}

function isKind(path: string, kind: 'dir' | 'any'): boolean {
  try {
    const st = statSync(path);
    return kind === 'any' || st.isDirectory();
  } catch {
    return false;
  }
}

function parseTarget(value: string): HostPort {
  const t = parseHostPort(value);
  if (typeof t === 'string') throw new InvalidArgumentError(`${t}.`);
  return t;
}
