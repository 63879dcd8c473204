/**
 * `describeCloseCode` gives every close code a meaning a person can act on
 * (RFC 6455 §7.4, IANA registry), and `isSendableCloseCode` matches what a
 * peer may put on the wire.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeCloseCode, isSendableCloseCode } from '../../src/toolkit/close-codes.js';

test('1000–1015 each have their own meaning, named as in RFC 6455 and the IANA registry', () => {
  const names: Record<number, RegExp> = {
    1000: /^normal closure$/,
    1001: /^going away/,
    1002: /^protocol error/,
    1003: /^unsupported data/,
    1004: /^reserved/,
    1005: /^no status received/,
    1006: /^abnormal closure: no close frame — the connection was cut by a proxy, a timeout or a crash$/,
    1007: /^invalid payload/,
    1008: /^policy violation/,
    1009: /^message too big/,
    1010: /^mandatory extension/,
    1011: /^internal error/,
    1012: /^service restart/,
    1013: /^try again later/,
    1014: /^bad gateway/,
    1015: /^TLS handshake failure/,
  };
  const seen = new Set<string>();
  for (let code = 1000; code <= 1015; code++) {
    const text = describeCloseCode(code);
    assert.match(text, names[code], `${code}`);
    seen.add(text);
  }
  assert.equal(seen.size, 16, 'no two codes share a description');
});

test('ranges: 3000–3999 registered for libraries (with the IANA entries), 4000–4999 application-defined, the rest reserved or invalid', () => {
  assert.match(describeCloseCode(3000), /^unauthorized \(registered range 3000–3999/);
  assert.match(describeCloseCode(3003), /^forbidden /);
  assert.match(describeCloseCode(3008), /^timeout /);
  assert.match(describeCloseCode(3500), /^registered range \(3000–3999\): defined by a library or framework/);
  assert.match(describeCloseCode(3999), /^registered range/);
  assert.match(describeCloseCode(4000), /^application-defined \(4000–4999\)/);
  assert.match(describeCloseCode(4999), /^application-defined/);
  assert.match(describeCloseCode(1016), /^reserved for future versions/);
  assert.match(describeCloseCode(2500), /^reserved for WebSocket extensions/);
  assert.match(describeCloseCode(999), /^invalid/);
  assert.match(describeCloseCode(5000), /^invalid/);
  assert.equal(describeCloseCode(70000), 'not a close code');
  assert.equal(describeCloseCode(1000.5), 'not a close code');
});

test('isSendableCloseCode refuses the codes RFC 6455 §7.4.1 reserves for reporting (1004–1006, 1015) and unassigned ranges', () => {
  for (const ok of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4001, 4999]) {
    assert.equal(isSendableCloseCode(ok), true, `${ok}`);
  }
  for (const bad of [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 1000.5]) {
    assert.equal(isSendableCloseCode(bad), false, `${bad}`);
  }
});
