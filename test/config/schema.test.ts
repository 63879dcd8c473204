import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nearest } from '../../src/config/schema-kit.js';
import { parseApp, parseConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';

/** The problem lines of the ConfigError that parsing `raw` throws. */
function problemsOf(raw: unknown): readonly string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'PH_ERR_CONFIG');
    return err.problems;
  }
  assert.fail(`config was accepted: ${JSON.stringify(raw)}`);
}

const app = (extra: Record<string, unknown> = {}) => ({ name: 'a', port: 8080, ...extra });

describe('config schema: unknown keys and types', () => {
  test('an unknown key names its path and the nearest valid key', () => {
    assert.deepEqual(problemsOf({ apps: [{ name: 'a', port: 1, wsport: 2 }] }), ['apps[0].wsport: unknown key, did you mean ws_port?']);
    assert.deepEqual(problemsOf({ aps: [] }), ['aps: unknown key, did you mean apps?']);
    assert.deepEqual(problemsOf({ apps: [app({ stripPrefix: false })] }), ['apps[0].stripPrefix: unknown key, did you mean strip_prefix?']);
  });

  test('an unknown key with nothing close lists the valid keys', () => {
    const [p] = problemsOf({ log: { zzzzzzzz: 1 } });
    assert.equal(p, 'log.zzzzzzzz: unknown key (valid keys: format, requests)');
    assert.equal(nearest('zzzzzzzz', ['format']), undefined);
  });

  test('wrong types are reported with the key path, every problem at once', () => {
    const problems = problemsOf({
      connect_timeout: true,
      trust_forwarded: 'yes',
      log: { format: 'xml' },
      apps: [app({ port: '80' }), app({ name: 'b', port: 70000 }), app({ name: 'c', port: 1.5, hosts: 'c.test' })],
    });
    assert.deepEqual([...problems].sort(), [
      'apps[0].port: expected an integer from 1 to 65535, got string "80"',
      'apps[1].port: expected an integer from 1 to 65535, got number 70000',
      'apps[2].hosts: expected a list of a host name such as "app.example.com" or "*.example.com", got string "c.test"',
      'apps[2].port: expected an integer from 1 to 65535, got number 1.5',
      'connect_timeout: expected a duration (seconds, or "500ms", "30s", "5m", "1h"), got boolean true',
      'log.format: expected one of "auto", "json", "text", got string "xml"',
      'trust_forwarded: expected true or false, got string "yes"',
    ]);
  });

  test('a config that is not a mapping is rejected', () => {
    assert.deepEqual(problemsOf([]), ['config: expected a mapping, got a list']);
    assert.deepEqual(problemsOf('apps'), ['config: expected a mapping, got string "apps"']);
    assert.match(problemsOf({ apps: {} })[0], /^apps: expected a list/);
  });

  test('an empty config parses to the documented defaults', () => {
    const cfg = parseConfig(undefined);
    assert.deepEqual(cfg.apps, []);
    assert.equal(cfg.idle_timeout, 3_600_000);
    assert.equal(cfg.connect_timeout, 5_000);
    assert.equal(cfg.response_timeout, 60_000);
    assert.equal(cfg.drain_timeout, 10_000);
    assert.equal(cfg.trust_forwarded, false);
    const a = parseConfig({ apps: [app()] }).apps[0];
    assert.equal(a.strip_prefix, true);
    assert.equal(a.tls_verify, true);
    assert.equal(a.ws_errors, 'ws');
  });
});

describe('config schema: header safety', () => {
  test('CR or LF in set_headers values, upstream_host or upstream_origin is rejected at load', () => {
    const problems = problemsOf({ apps: [app({ set_headers: { 'X-A': 'a\r\nX-Evil: 1' }, upstream_host: 'h\nx', upstream_origin: 'https://o.test\r' })] });
    assert.deepEqual([...problems].sort(), [
      'apps[0].set_headers.X-A: header values must not contain CR, LF or NUL',
      'apps[0].upstream_host: header values must not contain CR, LF or NUL',
      'apps[0].upstream_origin: header values must not contain CR, LF or NUL',
    ]);
    assert.deepEqual(problemsOf({ apps: [app({ set_headers: { 'X-B': 'nul\0byte' } })] }), ['apps[0].set_headers.X-B: header values must not contain CR, LF or NUL']);
  });

  test('a set_headers value HTTP cannot carry (a control character, a character beyond U+00FF) is rejected at load', () => {
    assert.deepEqual(problemsOf({ apps: [app({ set_headers: { 'X-Bell': 'ding\x07', 'X-Name': 'Zo\u00eb', 'X-Emoji': 'ok \u{1F600}' } })] }), [
      'apps[0].set_headers.X-Bell: header values are written as latin1 text: "\\u0007" (U+0007) cannot be; percent-encode it or leave it out',
      'apps[0].set_headers.X-Emoji: header values are written as latin1 text: "\u{1F600}" (U+1F600) cannot be; percent-encode it or leave it out',
    ]);
  });

  test('an invalid header name in set_headers is rejected', () => {
    const problems = problemsOf({ apps: [app({ set_headers: { 'Bad Header': 'v', 'X:y': 'v', '': 'v', 'X-Good': 'v' } })] });
    assert.deepEqual([...problems].sort(), [
      'apps[0].set_headers.: "" is not a valid header name',
      'apps[0].set_headers.Bad Header: "Bad Header" is not a valid header name',
      'apps[0].set_headers.X:y: "X:y" is not a valid header name',
    ]);
  });

  test('a valid set_headers mapping is kept as given', () => {
    const a = parseConfig({ apps: [app({ set_headers: { 'X-Remote-User': 'me', Authorization: 'Bearer t' } })] }).apps[0];
    assert.deepEqual(a.set_headers, { 'X-Remote-User': 'me', Authorization: 'Bearer t' });
  });
});

describe('config schema: names, targets, uniqueness', () => {
  test('reserved names are rejected: _porthole and webapp', () => {
    assert.equal(problemsOf({ apps: [app({ name: '_porthole' })] }).length, 1);
    assert.deepEqual(problemsOf({ apps: [app({ name: 'webapp' })] }), ['apps[0].name: "webapp" is reserved for the gateway']);
  });

  test('a prefix under a reserved path (/_porthole, /webapp) is rejected', () => {
    // Otherwise an app could take over the gateway's own paths (the admin API, POST /webapp).
    for (const prefix of ['/_porthole', '/_porthole/api', '/webapp', '/webapp/x']) {
      const problems = problemsOf({ apps: [app({ prefix })] });
      assert.equal(problems.length, 1, `${prefix}: ${problems.join('; ')}`);
      assert.match(problems[0], /^apps\[0\]\.prefix: .*reserved/);
    }
    assert.equal(parseConfig({ apps: [app({ prefix: '/webapps' })] }).apps[0].prefix, '/webapps');
  });

  test('names must be lowercase letters, digits and dashes', () => {
    for (const name of ['A', '-a', 'a_b', 'a'.repeat(64), '']) assert.match(problemsOf({ apps: [app({ name })] })[0], /^apps\[0\]\.name: /, name);
    assert.equal(parseConfig({ apps: [app({ name: 'a'.repeat(63) })] }).apps[0].name.length, 63);
  });

  test('duplicate names, hosts and prefixes are rejected', () => {
    const problems = problemsOf({
      apps: [app({ hosts: ['x.test'] }), app({ port: 2, hosts: ['X.test'] }), { name: 'b', port: 3, prefix: '/a' }],
    });
    assert.deepEqual(problems, [
      'apps[1].name: "a" is already used by apps[0]',
      'apps[1].prefix: "/a" is already the prefix of a',
      'apps[1].hosts: "X.test" is already routed to a',
      'apps[2].prefix: "/a" is already the prefix of a',
    ]);
  });

  test('exactly one of port, url, socket', () => {
    assert.deepEqual(problemsOf({ apps: [{ name: 'a' }] }), ['apps[0]: needs one of port, url or socket (where the app listens)']);
    assert.deepEqual(problemsOf({ apps: [{ name: 'a', port: 1, url: 'http://x.test' }] }), ['apps[0]: give only one of port, url, socket (got port and url)']);
    assert.deepEqual(problemsOf({ apps: [{ name: 'a', port: 1, url: 'http://x.test', socket: '/s' }] }), ['apps[0]: give only one of port, url, socket (got port and url and socket)']);
    for (const target of [{ port: 1 }, { url: 'https://x.test/base' }, { socket: '/run/app.sock' }]) {
      assert.equal(parseConfig({ apps: [{ name: 'a', ...target }] }).apps.length, 1);
    }
    assert.equal(parseConfig({ apps: [{ name: 'a', cmd: './start.sh' }] }).apps[0].cmd, './start.sh', 'a supervised app gets its port later');
  });

  test('upstream URLs must be http(s)/ws(s), without credentials, query or fragment', () => {
    const problems = problemsOf({ apps: [{ name: 'a', url: 'ftp://x' }, { name: 'b', url: 'http://u:p@x' }, { name: 'c', url: 'http://x/?q' }, { name: 'd', url: 'nope' }] });
    assert.deepEqual(problems, [
      'apps[0].url: "ftp://x": scheme must be http, https, ws or wss',
      'apps[1].url: credentials in the URL would leak into logs: use set_headers with Authorization instead',
      'apps[2].url: a query or fragment has no meaning in an upstream URL',
      'apps[3].url: "nope" is not a URL',
    ]);
  });

  test('prefixes and allowed origins are checked', () => {
    assert.match(problemsOf({ apps: [app({ prefix: '/x/' })] })[0], /^apps\[0\]\.prefix: "\/x\/" is not a path/);
    assert.match(problemsOf({ apps: [app({ prefix: 'y' })] })[0], /^apps\[0\]\.prefix: /);
    assert.match(problemsOf({ apps: [app({ allowed_origins: ['https://x.test/path'] })] })[0], /^apps\[0\]\.allowed_origins\[0\]: .* is not an origin/);
    assert.deepEqual(parseConfig({ apps: [app({ allowed_origins: ['https://x.test:8443', '*'] })] }).apps[0].allowed_origins, ['https://x.test:8443', '*']);
  });

  test('parseApp checks one app on its own, with its own path', () => {
    assert.equal(parseApp({ name: 'solo', port: 3000 }).name, 'solo');
    assert.throws(() => parseApp({ name: 'solo', prot: 3000 }, 'body'), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.problems.includes('body.prot: unknown key, did you mean port?'), err.problems.join('; '));
      return true;
    });
  });
});

describe('config schema: durations', () => {
  test("'500ms', '2m', 30 and friends parse to milliseconds", () => {
    const cfg = parseConfig({
      connect_timeout: '500ms',
      response_timeout: '2m',
      idle_timeout: 30,
      drain_timeout: '1.5s',
      apps: [app({ idle_timeout: '1h', ping_interval: 0.25, response_timeout: ' 45s ', connect_timeout: '10' })],
    });
    assert.equal(cfg.connect_timeout, 500);
    assert.equal(cfg.response_timeout, 120_000);
    assert.equal(cfg.idle_timeout, 30_000);
    assert.equal(cfg.drain_timeout, 1500);
    const a = cfg.apps[0];
    assert.equal(a.idle_timeout, 3_600_000);
    assert.equal(a.ping_interval, 250);
    assert.equal(a.response_timeout, 45_000);
    assert.equal(a.connect_timeout, 10_000);
  });

  test('negative, unit-less words and unknown units are rejected', () => {
    for (const v of [-5, '-1', '5 minutes', '1d', 'soon', Infinity, Number.NaN]) {
      const [p] = problemsOf({ idle_timeout: v });
      assert.match(p, /^idle_timeout: expected a duration/, String(v));
    }
  });

  test('a duration longer than a timer can wait (about 24.8 days) is rejected, not turned into 1 ms', () => {
    // Node clamps a setTimeout delay above 2^31-1 ms to 1 ms: `idle_timeout: 1000h` would close
    // every tunnel at once.
    const [p] = problemsOf({ idle_timeout: '1000h' });
    assert.match(p, /^idle_timeout: /);
    assert.equal(parseConfig({ idle_timeout: '500h' }).idle_timeout, 500 * 3_600_000);
  });
});

describe('config schema: frozen result', () => {
  test('the parsed config is deeply frozen: assignment throws in strict mode', () => {
    const cfg = parseConfig({ apps: [app({ hosts: ['a.test'], set_headers: { 'X-A': '1' } })] });
    assert.ok(Object.isFrozen(cfg));
    assert.throws(() => {
      (cfg as { connect_timeout: number }).connect_timeout = 1;
    }, TypeError);
    assert.throws(() => {
      (cfg.apps as unknown[]).push(app({ name: 'b' }));
    }, TypeError);
    assert.throws(() => {
      (cfg.apps[0] as { port: number }).port = 9;
    }, TypeError);
    assert.throws(() => {
      (cfg.apps[0].hosts as string[])[0] = 'evil.test';
    }, TypeError);
    assert.throws(() => {
      (cfg.apps[0].set_headers as Record<string, string>)['X-A'] = 'changed';
    }, TypeError);
    assert.throws(() => {
      (cfg.log as { format: string }).format = 'json';
    }, TypeError);
  });

  test('parsing does not freeze or change the caller’s object', () => {
    const raw = { apps: [app()] };
    parseConfig(raw);
    assert.ok(!Object.isFrozen(raw));
    assert.ok(!Object.isFrozen(raw.apps[0]));
    assert.deepEqual(raw, { apps: [app()] });
  });

  test('defaults shared between parses are not frozen through one of them', () => {
    const one = parseConfig({});
    const two = parseConfig({});
    assert.notEqual(one, two);
    assert.equal(two.log.format, 'auto');
  });
});
