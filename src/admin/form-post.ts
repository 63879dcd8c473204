/**
 * What the gateway's own HTML forms (the dashboard's token login and logout,
 * the access-control login and logout) share: reading a small urlencoded body,
 * and telling a post of another origin (login or logout CSRF).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BodyTooLargeError } from '../errors.js';

/** A login form's body: a user, a password or token, and a little more. */
export const MAX_FORM = 4096;

/** Reads an urlencoded body; `BodyTooLargeError` (and the connection closed after the answer) past MAX_FORM bytes. */
export function readForm(req: IncomingMessage, res: ServerResponse, label: string): Promise<URLSearchParams> {
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_FORM) chunks.push(c);
      else if (size - c.length <= MAX_FORM) {
        res.setHeader('Connection', 'close');
        fail(new BodyTooLargeError(`${label} larger than ${MAX_FORM} bytes`));
      }
    });
    req.on('error', fail);
    req.on('end', () => {
      if (size <= MAX_FORM) ok(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    });
  });
}

/** True when the request's `Origin` names another origin than its `Host` (an absent Origin is not foreign). */
export function fromOtherOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  let host = '';
  try {
    host = new URL(origin).host.toLowerCase();
  } catch {
    /* foreign */
  }
  return host !== (req.headers.host ?? '').toLowerCase();
}
