/**
 * The bridge keys of an app in the one config schema: `bridge`, `ws_bridge`,
 * `bridge_token_file`, `bridge_text`, checked at load with a message that
 * says what to change.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';

function problemsOf(raw: unknown): readonly string[] {
  try {
    parseConfig(raw);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

test('bridge is a target of its own; ws_bridge goes next to a port; a token file alone is enough', () => {
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', bridge: '127.0.0.1:5900' }] }), []);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', bridge: 'vnc-host.internal:5901' }] }), []);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', bridge: '[::1]:5900' }] }), []);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', port: 9002, ws_bridge: '127.0.0.1:5900' }] }), []);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', bridge_token_file: 'tokens.cfg', bridge_text: 'binary' }] }), []);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', port: 9002, bridge_token_file: 'tokens.cfg' }] }), []);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', cmd: 'x11vnc', bridge: '127.0.0.1:5900' }] }), []);
});

test('a bridge target must be HOST:PORT with a port from 1 to 65535', () => {
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', bridge: '5900' }] }), [
    'apps[0].bridge: "5900" is not HOST:PORT (such as "127.0.0.1:5900" or "[::1]:5900")',
  ]);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', bridge: '127.0.0.1:0' }] }), ['apps[0].bridge: "127.0.0.1:0": the port must be from 1 to 65535']);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', port: 1, ws_bridge: '127.0.0.1:65536' }] }), ['apps[0].ws_bridge: "127.0.0.1:65536": the port must be from 1 to 65535']);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', bridge: 'http://127.0.0.1:5900' }] }), [
    'apps[0].bridge: "http://127.0.0.1:5900" is not HOST:PORT (such as "127.0.0.1:5900" or "[::1]:5900")',
  ]);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', bridge: 5900 }] }), ['apps[0].bridge: expected HOST:PORT such as "127.0.0.1:5900", got number 5900']);
});

test('keys that cannot go together are refused with what to do instead', () => {
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', port: 9002, bridge: '127.0.0.1:5900' }] }), [
    'apps[0].bridge: not with port (bridge takes every upgrade and has no pages; for pages from port, use ws_bridge)',
  ]);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', port: 9002, ws_port: 6080, ws_bridge: '127.0.0.1:5900' }] }), [
    'apps[0].ws_bridge: not with ws_port (upgrades go to one place)',
  ]);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', bridge: '127.0.0.1:5900', ws_bridge: '127.0.0.1:5901' }] }), [
    'apps[0].ws_bridge: not with bridge, which already takes every upgrade',
  ]);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', bridge: '127.0.0.1:5900', bridge_token_file: 't' }] }), [
    "apps[0].bridge_token_file: the token file picks each upgrade's target; drop bridge",
  ]);
  assert.deepEqual(problemsOf({ apps: [{ name: 'web', port: 80, bridge_text: 'binary' }] }), ['apps[0].bridge_text: only used with bridge, ws_bridge, bridge_token_file or bridge_token_redis']);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', bridge: '127.0.0.1:5900', bridge_text: 'base64' }] }), [
    'apps[0].bridge_text: expected one of "refuse", "binary", got string "base64"',
  ]);
  assert.deepEqual(problemsOf({ apps: [{ name: 'vnc', brigde: '127.0.0.1:5900' }] }), ['apps[0].brigde: unknown key, did you mean bridge?']);
});
