/**
 * Option parsers shared by the commands that open WebSockets (connect, bench,
 * doctor), so `-H`, `-s` and URLs are read, and refused, the same way by all.
 */
import { InvalidArgumentError } from 'commander';
import { readFileSync } from 'node:fs';
import { normalizeUrl, parseHeader } from '../toolkit/connect.js';

/** `-H "Name: value"`, repeatable. */
export function collectHeader(value: string, previous: [string, string][] | undefined): [string, string][] {
  const header = parseHeader(value);
  if (!header) throw new InvalidArgumentError('expected "Name: value" with a valid header name and no line breaks.');
  return [...(previous ?? []), header];
}

/** `-s NAME`, repeatable. RFC 6455 §4.1: each subprotocol is an HTTP token, offered once. */
export function collectSubprotocol(value: string, previous: string[] | undefined): string[] {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) throw new InvalidArgumentError('expected a token (letters, digits, !#$%&\'*+-.^_`|~).');
  if (previous?.includes(value)) throw new InvalidArgumentError(`${value} is offered twice.`);
  return [...(previous ?? []), value];
}

/** A ws(s):// URL; http(s):// and a bare host:port are accepted and normalized. */
export function parseWsUrl(value: string): string {
  const url = normalizeUrl(value);
  if (!url) throw new InvalidArgumentError('expected a ws://, wss://, http:// or https:// URL without a #fragment.');
  return url;
}

/**
 * The `-H` list as one header object: repeated headers joined as RFC 9110 §5.3
 * allows (Cookie with "; ", RFC 6265 §5.4).
 */
export function mergeHeaders(list: readonly [string, string][]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of list) {
    const existing = Object.keys(headers).find((h) => h.toLowerCase() === name.toLowerCase());
    if (existing) headers[existing] += `${name.toLowerCase() === 'cookie' ? '; ' : ', '}${value}`;
    else headers[name] = value;
  }
  return headers;
}

/** SIGINT/SIGTERM abort the run (it then reports and closes cleanly); a second one exits at once. */
export function abortOnSignals(): AbortController {
  const abort = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts > 1) process.exit(1);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return abort;
}

/** Reads a file named by an option (`--binary-file`, `--ca`…), as a usage error when it cannot. */
export function readFileArg(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`);
  }
}
