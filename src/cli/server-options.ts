/**
 * What the standalone servers (`porthole bridge`, `porthole stdio`) share on
 * their command line: where to listen, who may connect from a browser
 * (Origin and Host), durations and counts, and stopping on a signal.
 */
import { InvalidArgumentError, Option } from 'commander';
import { parseHostPort, type HostPort } from '../config/host-port.js';
import { HOST_NAME, originProblem } from '../config/schema.js';

/** `[HOST:]PORT` to listen on: a bare port is on 127.0.0.1, and port 0 (a free one) is allowed, unlike in a target. */
export function parseListen(value: string): HostPort {
  if (/^\d+$/.test(value)) {
    const port = Number(value);
    if (port > 65535) throw new InvalidArgumentError('expected [HOST:]PORT with a port from 0 to 65535.');
    return { host: '127.0.0.1', port };
  }
  const t = parseHostPort(value.replace(/:0$/, ':65535'));
  if (typeof t === 'string') throw new InvalidArgumentError(`expected [HOST:]PORT such as 8080 or 0.0.0.0:8080, got ${JSON.stringify(value)}.`);
  return /:0$/.test(value) ? { host: t.host, port: 0 } : t;
}

/** A repeatable option: every value, parsed, in order. */
export function collect(parse: (value: string) => string): (value: string, previous: string[]) => string[] {
  return (value, previous) => [...previous, parse(value)];
}

export function parseOrigin(value: string): string {
  const problem = originProblem(value);
  if (problem) throw new InvalidArgumentError(`${problem}.`);
  return value;
}

export function parseServerName(value: string): string {
  if (!HOST_NAME.test(value)) throw new InvalidArgumentError(`expected a host name such as app.example.com or *.example.com, got ${JSON.stringify(value)}.`);
  return value;
}

export function parseSeconds(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(n) || n * 1000 > 2 ** 31 - 1) throw new InvalidArgumentError('expected a number of seconds (0 or more).');
  return n;
}

export function parseCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number (0 or more).');
  return n;
}

export function parsePositive(value: string): number {
  const n = parseCount(value);
  if (n === 0) throw new InvalidArgumentError('expected a whole number above 0.');
  return n;
}

/** `--allowed-origin`, as every standalone server takes it; `connect` names what a page may do. */
export function allowedOriginOption(connect: string): Option {
  return new Option('--allowed-origin <origin>', `let pages of this origin ${connect} (repeat for more; "*" for any page); a client that sends no Origin (not a browser) is always let in`)
    .argParser(collect(parseOrigin))
    .default([], 'same origin');
}

/** `--server-name`, as every standalone server takes it; `example` is a name someone would give it. */
export function serverNameOption(example = ''): Option {
  return new Option('--server-name <name>', `also answer under this Host name besides localhost and this machine's addresses (${example}"*.example.com" for every name under it; repeat for more)`)
    .argParser(collect(parseServerName))
    .default([], 'none');
}

/**
 * On SIGTERM or SIGINT: says how many connections close with 1001, closes the
 * server, then exits 0. Later signals do not cut the close short (as in
 * `porthole serve`): with the default action back, a second Ctrl-C ended
 * porthole before the SIGKILL that a program ignoring SIGTERM was waiting for.
 */
export function closeOnSignal(server: { connections: number; close(): Promise<void> }, stopLog: () => void): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return void process.stderr.write(`${signal}: already closing (a program that ignores SIGTERM gets SIGKILL after the kill grace)\n`);
    stopping = true;
    process.stderr.write(`${signal}: closing ${server.connections} connection${server.connections === 1 ? '' : 's'} with 1001\n`);
    void server.close().then(() => {
      stopLog();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
