/**
 * The one Host parser the admin guard and the DNS-rebinding check share
 * (issue 8, item 11): `host[:port]` as RFC 9110 §7.2 / RFC 3986 §3.2.2 allow
 * it, and nothing else — userinfo, paths, spaces, percent-encoding, zone ids
 * and out-of-range ports are refused rather than guessed at.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLoopbackName, parseHostHeader } from '../../src/gateway/host-header.js';

test('valid Hosts parse to a lowercase name, a port and the kind of address', () => {
  const cases: [string, string, number | undefined, 0 | 4 | 6][] = [
    ['localhost', 'localhost', undefined, 0],
    ['LocalHost:50000', 'localhost', 50000, 0],
    ['localhost.', 'localhost', undefined, 0],
    ['localhost:', 'localhost', undefined, 0],
    ['vnc.localhost:8080', 'vnc.localhost', 8080, 0],
    ['127.0.0.1:65535', '127.0.0.1', 65535, 4],
    ['[::1]', '::1', undefined, 6],
    ['[::1]:80', '::1', 80, 6],
    ['[::1]:', '::1', undefined, 6],
    ['[FD00::2]:443', 'fd00::2', 443, 6],
    ['[::ffff:127.0.0.1]:1', '::ffff:127.0.0.1', 1, 6],
    ['my_service:3000', 'my_service', 3000, 0],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example', undefined, 0],
    [`${'a'.repeat(63)}.example`, `${'a'.repeat(63)}.example`, undefined, 0],
  ];
  for (const [text, name, port, ip] of cases) assert.deepEqual(parseHostHeader(text), { name, port, ip }, text);
});

test('anything that is not host[:port] is refused', () => {
  const bad = [
    '127.0.0.1:50000@evil.com',
    'user@localhost',
    'user:pass@localhost:80',
    'localhost:80x',
    'localhost:+80',
    'localhost:-1',
    'localhost:65536',
    'localhost:123456',
    'localhost:80:80',
    'local host',
    'localhost/admin',
    'localhost?x',
    'localhost#x',
    '%6cocalhost',
    'localhost\\evil',
    '[::1',
    '::1',
    '[::1]x',
    '[fe80::1%25eth0]',
    '[127.0.0.1]',
    '[v1.fe80::a]',
    '-leading.example',
    'trailing-.example',
    'a..b',
    '.example',
    `${'a'.repeat(64)}.example`,
    `${'a.'.repeat(130)}example`,
    '',
    ' ',
    'é.example',
  ];
  for (const text of bad) assert.equal(parseHostHeader(text), null, JSON.stringify(text));
});

test('loopback names: localhost, *.localhost (unless asked not to), 127/8, ::1 and IPv4-mapped 127/8 — and no lookalikes', () => {
  const yes = ['localhost', 'vnc.localhost', '127.0.0.1', '127.255.0.9', '[::1]', '[::ffff:127.0.0.1]'];
  const no = ['localhost.evil.example', 'evillocalhost', '128.0.0.1', '[::2]', '10.0.0.1', '0x7f000001', 'localhost-1'];
  for (const h of yes) assert.equal(isLoopbackName(parseHostHeader(h)!), true, h);
  for (const h of no) assert.equal(isLoopbackName(parseHostHeader(h)!), false, h);
  assert.equal(isLoopbackName(parseHostHeader('vnc.localhost')!, false), false, 'the admin API does not take *.localhost');
});
