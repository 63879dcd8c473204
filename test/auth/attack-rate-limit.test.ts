/**
 * Attacks on the failed-login rate limit by changing addresses: a client
 * with an IPv6 network (a /64 is the least any host is given) picks a new
 * address per guess, and an IPv4 client on a dual-stack listener is also
 * seen as `::ffff:a.b.c.d`. Each must stay one client for the limit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoginRateLimit } from '../../src/auth/rate-limit.js';

test('failed logins from many addresses of one IPv6 /64 are limited together; another /64 is not', () => {
  const limit = new LoginRateLimit(5, 60_000);
  const now = Date.now();
  for (let i = 1; i <= 5; i++) limit.fail(`2001:db8:1:2::${i.toString(16)}`, now);
  assert.ok(limit.retryAfter('2001:db8:1:2:abcd:ef01:2345:6789', now) > 0);
  assert.ok(limit.retryAfter('2001:0db8:0001:0002::ffff', now) > 0, 'the same /64 written longhand');
  assert.equal(limit.retryAfter('2001:db8:1:3::1', now), 0);
});

test('an IPv4 client counts as one whether seen as a.b.c.d or ::ffff:a.b.c.d', () => {
  const limit = new LoginRateLimit(5, 60_000);
  const now = Date.now();
  for (let i = 0; i < 3; i++) limit.fail('192.0.2.7', now);
  for (let i = 0; i < 2; i++) limit.fail('::ffff:192.0.2.7', now);
  assert.ok(limit.retryAfter('192.0.2.7', now) > 0);
  assert.ok(limit.retryAfter('::FFFF:192.0.2.7', now) > 0);
  assert.equal(limit.retryAfter('192.0.2.8', now), 0);
});
