/**
 * Option parsers shared by the commands that open WebSockets (connect, bench,
 * doctor), so `-H`, `-s` and URLs are read, and refused, the same way by all.
 */
import { InvalidArgumentError } from 'commander';
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
