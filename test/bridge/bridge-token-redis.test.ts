/**
 * Bridge targets picked by token from Redis, in websockify's TokenRedis
 * format: as an app (`bridge_token_redis`) and standalone (`porthole bridge
 * --token-redis`, or websockify's `--token-plugin TokenRedis
 * --token-source`). A real redis-server (test/helpers/redis.ts), real TCP
 * targets, and Debian's websockify reading the same keys.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { ensureTools } from '../../scripts/ensure-tools.mjs';
import { parseConfig } from '../../src/config/schema.js';
import { parseTokenRedisUrl, parseWebsockifyRedisSource } from '../../src/config/token-redis.js';
import { ConfigError, TokenStoreError } from '../../src/errors.js';
import { subscribe, type EventMap } from '../../src/events.js';
import { closeTokenRedisClients, parseTokenValue, RedisTokenTargets } from '../../src/gateway/bridge-token-redis.js';
import { startBridgeServer } from '../../src/toolkit/bridge-server.js';
import { runCli } from '../helpers/cli.js';
import { startGateway, wsCloseOf, type TestGateway } from '../helpers/net.js';
import { PYTHON } from '../helpers/python.js';
import { freePort, redisCertificates, startRedis, type RedisHandle } from '../helpers/redis.js';
import { logEvents, startBridgeCli } from '../fixtures/bridge/bridge-cli.js';
import { tcpPeer, type TcpPeer } from '../fixtures/bridge/tcp-peers.js';
import { receiveBytes } from '../fixtures/bridge/ws-bytes.js';

const PASSWORD = 'p@ss/w#rd-7f3';
const PASSWORD_URL = encodeURIComponent(PASSWORD);

/** Connects and returns the target's banner (each peer says its own name first). */
async function bannerVia(url: string): Promise<string> {
  const ws = new WebSocket(url, ['binary']);
  // websockify 0.10 answers a close with status 1005 on the wire, which ws reports as an error after the banner
  ws.on('error', () => {});
  const banner = receiveBytes(ws, 2);
  const closed = new Promise<never>((_, fail) => ws.once('close', (code, reason) => fail(new Error(`closed ${code} ${reason} before the banner`))));
  await Promise.race([once(ws, 'open'), closed]);
  const text = await Promise.race([banner, closed]);
  ws.close();
  return text.toString();
}

async function client(url: string): Promise<Redis> {
  const r = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true });
  r.on('error', () => {});
  await r.connect();
  return r;
}

/** Events of one kind while `fn` runs. */
function collect<N extends keyof EventMap>(name: N): { events: EventMap[N][]; stop(): void } {
  const events: EventMap[N][] = [];
  const stop = subscribe(name, (e) => events.push(e));
  return { events, stop };
}

test('token values: host:port, [v6]:port, websockify JSON {"host": "h:p"}, JSON with a port number or string; anything else says why', () => {
  assert.deepEqual(parseTokenValue('127.0.0.1:5901'), { host: '127.0.0.1', port: 5901 });
  assert.deepEqual(parseTokenValue(' vnc-7.internal:5900\n'), { host: 'vnc-7.internal', port: 5900 });
  assert.deepEqual(parseTokenValue('[::1]:5902'), { host: '::1', port: 5902 });
  assert.deepEqual(parseTokenValue('{"host": "10.0.0.7:5903"}'), { host: '10.0.0.7', port: 5903 });
  assert.deepEqual(parseTokenValue('{"host": "10.0.0.7", "port": 5904}'), { host: '10.0.0.7', port: 5904 });
  assert.deepEqual(parseTokenValue('{"host": "10.0.0.7", "port": "5905"}'), { host: '10.0.0.7', port: 5905 });
  assert.deepEqual(parseTokenValue('{"host": "::1", "port": 5906}'), { host: '::1', port: 5906 });
  assert.deepEqual(parseTokenValue('{"host": "[::1]", "port": 5907}'), { host: '::1', port: 5907 });
  // The value is never quoted: it reaches the client, who may have named any key of the db.
  assert.equal(parseTokenValue('5900'), 'its value is not valid: expected "host:port" or JSON {"host": "host", "port": 5900}');
  assert.match(parseTokenValue('host:99999') as string, /is not valid/);
  assert.match(parseTokenValue('{"host": "h"') as string, /not valid JSON/);
  assert.match(parseTokenValue('{"hostname": "h:1"}') as string, /no "host" string/);
  assert.match(parseTokenValue('{"host": "h"}') as string, /"host" has no port/);
  assert.match(parseTokenValue('{"host": "h", "port": 0}') as string, /"port" is not a port/);
  assert.match(parseTokenValue('{"host": "h", "port": "59x"}') as string, /"port" is not a port/);
  assert.match(parseTokenValue('{"host": "bad host", "port": 1}') as string, /not a host name/);
  assert.match(parseTokenValue('[1,2]') as string, /not valid|no "host"/);
});

test('store addresses: redis:// URLs with password and db, and websockify\'s host:port:db:password:namespace', () => {
  assert.deepEqual(parseTokenRedisUrl(`redis://:${PASSWORD_URL}@127.0.0.1:6380/3`), { host: '127.0.0.1', port: 6380, db: 3, username: undefined, password: PASSWORD, tls: false });
  assert.deepEqual(parseTokenRedisUrl('redis://redis.internal'), { host: 'redis.internal', port: 6379, db: 0, username: undefined, password: undefined, tls: false });
  assert.deepEqual(parseTokenRedisUrl('rediss://vnc:secret@[::1]:6390/1'), { host: '::1', port: 6390, db: 1, username: 'vnc', password: 'secret', tls: true });
  assert.match(parseTokenRedisUrl('http://h:1') as string, /expected redis:\/\//);
  assert.match(parseTokenRedisUrl('redis://h:1/x') as string, /database number such as \/0, not \/x/);
  assert.match(parseTokenRedisUrl('redis://h:1/0?ns=vnc') as string, /no query/);
  const bad = parseTokenRedisUrl('redis://:hunter2@h:1/x') as string;
  assert.doesNotMatch(bad, /hunter2/, 'a password is never repeated in a message');
  assert.deepEqual(parseWebsockifyRedisSource('redis.internal'), { host: 'redis.internal', port: 6379, db: 0, password: undefined, tls: false, namespace: undefined });
  assert.deepEqual(parseWebsockifyRedisSource('127.0.0.1:6380'), { host: '127.0.0.1', port: 6380, db: 0, password: undefined, tls: false, namespace: undefined });
  assert.deepEqual(parseWebsockifyRedisSource('h:::pw'), { host: 'h', port: 6379, db: 0, password: 'pw', tls: false, namespace: undefined });
  assert.deepEqual(parseWebsockifyRedisSource('h:6390:2:pw:my-app:vnc'), { host: 'h', port: 6390, db: 2, password: 'pw', tls: false, namespace: 'my-app:vnc' });
  assert.deepEqual(parseWebsockifyRedisSource('h::::ns'), { host: 'h', port: 6379, db: 0, password: undefined, tls: false, namespace: 'ns' });
  assert.match(parseWebsockifyRedisSource('h:port') as string, /port must be from 1 to 65535/);
  assert.doesNotMatch(parseWebsockifyRedisSource('h:1:x:hunter2') as string, /hunter2/);
});

describe('config keys', () => {
  function problemsOf(raw: unknown): readonly string[] {
    try {
      parseConfig(raw);
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  }

  test('bridge_token_redis alone, or next to a port for pages, with a namespace and bridge_text', () => {
    assert.deepEqual(problemsOf({ apps: [{ name: 'desks', bridge_token_redis: 'redis://127.0.0.1:6379/0' }] }), []);
    assert.deepEqual(problemsOf({ apps: [{ name: 'desks', port: 9002, bridge_token_redis: 'redis://:pw@h:6379/2', bridge_token_redis_namespace: 'vnc', bridge_text: 'binary' }] }), []);
  });

  test('exclusive with bridge_token_file and fixed targets; a bad URL says what to write; the password is never echoed', () => {
    assert.deepEqual(problemsOf({ apps: [{ name: 'd', bridge_token_redis: 'redis://h/0', bridge_token_file: 't' }] }), ['apps[0].bridge_token_redis: not with bridge_token_file (tokens come from one place)']);
    assert.deepEqual(problemsOf({ apps: [{ name: 'd', bridge_token_redis: 'redis://h/0', bridge: '127.0.0.1:5900' }] }), ["apps[0].bridge_token_redis: the token in Redis picks each upgrade's target; drop bridge"]);
    assert.deepEqual(problemsOf({ apps: [{ name: 'd', port: 1, bridge_token_redis: 'redis://h/0', ws_bridge: '127.0.0.1:5900' }] }), ["apps[0].bridge_token_redis: the token in Redis picks each upgrade's target; drop ws_bridge"]);
    assert.deepEqual(problemsOf({ apps: [{ name: 'd', port: 1, bridge_token_redis: 'redis://h/0', ws_port: 2 }] }), ["apps[0].bridge_token_redis: the token in Redis picks each upgrade's target; drop ws_port"]);
    assert.deepEqual(problemsOf({ apps: [{ name: 'd', port: 1, bridge_token_redis_namespace: 'vnc' }] }), ['apps[0].bridge_token_redis_namespace: only used with bridge_token_redis']);
    const pasted = problemsOf({ apps: [{ name: 'd', bridge_token_redis: '10.0.0.5:6379:2:hunter2:vnc' }] });
    assert.equal(pasted.length, 1);
    assert.match(pasted[0]!, /is written redis:\/\/:PASSWORD@10\.0\.0\.5:6379\/2 with bridge_token_redis_namespace: vnc/);
    assert.doesNotMatch(pasted[0]!, /hunter2/);
    const badDb = problemsOf({ apps: [{ name: 'd', bridge_token_redis: 'redis://:hunter2@h/abc' }] });
    assert.match(badDb[0]!, /^apps\[0\]\.bridge_token_redis: .*database number/);
    assert.doesNotMatch(badDb[0]!, /hunter2/);
  });
});

describe('bridge_token_redis on an app', { timeout: 60_000 }, () => {
  let redis: RedisHandle;
  let admin: Redis;
  let a: TcpPeer;
  let b: TcpPeer;
  let g: TestGateway;
  const url = () => `redis://:${PASSWORD_URL}@127.0.0.1:${redis.port}/3`;

  before(async () => {
    redis = await startRedis({ persist: true, password: PASSWORD });
    admin = await client(`${url()}`);
    a = await tcpPeer({ banner: 'A\n' });
    b = await tcpPeer({ banner: 'B\n' });
    g = await startGateway({ apps: [{ name: 'desks', bridge_token_redis: url(), bridge_token_redis_namespace: 'vnc' }] });
  });
  after(async () => {
    await g?.close();
    admin?.disconnect();
    closeTokenRedisClients();
    await redis?.close();
    await a?.close();
    await b?.close();
  });

  test('both value formats pick their target, under the namespace, in the URL\'s db', async () => {
    await admin.set('vnc:plain', `127.0.0.1:${a.port}`);
    await admin.set('vnc:json', JSON.stringify({ host: '127.0.0.1', port: b.port }));
    await admin.set('vnc:json-str', JSON.stringify({ host: '127.0.0.1', port: String(a.port) }));
    await admin.set('vnc:websockify', JSON.stringify({ host: `127.0.0.1:${b.port}` }));
    await admin.set('plain', `127.0.0.1:${b.port}`); // outside the namespace: not a token
    assert.equal(await bannerVia(`${g.wsUrl}/desks/websockify?token=plain`), 'A\n');
    assert.equal(await bannerVia(`${g.wsUrl}/desks/websockify?token=json`), 'B\n');
    assert.equal(await bannerVia(`${g.wsUrl}/desks/websockify?token=json-str`), 'A\n');
    assert.equal(await bannerVia(`${g.wsUrl}/desks/websockify?token=websockify`), 'B\n');
    const other = await client(`redis://:${PASSWORD_URL}@127.0.0.1:${redis.port}/0`);
    try {
      await other.set('vnc:db0-only', `127.0.0.1:${a.port}`);
    } finally {
      other.disconnect();
    }
    const c = await wsCloseOf(`${g.wsUrl}/desks/websockify?token=db0-only`, ['binary']);
    assert.equal(c.code, 1008, 'a key in another db is not a token');
  });

  test('a token deleted is refused at the next connection; a token added works at once; a changed value moves at once', async () => {
    await admin.set('vnc:t1', `127.0.0.1:${a.port}`);
    assert.equal(await bannerVia(`${g.wsUrl}/desks/?token=t1`), 'A\n');
    await admin.del('vnc:t1');
    const gone = await wsCloseOf(`${g.wsUrl}/desks/?token=t1`, ['binary']);
    assert.ok(gone.opened);
    assert.equal(gone.code, 1008);
    assert.equal(gone.reason, 'desks: unknown token "t1"');
    await admin.set('vnc:t1', `127.0.0.1:${b.port}`);
    assert.equal(await bannerVia(`${g.wsUrl}/desks/?token=t1`), 'B\n');
    await admin.set('vnc:t1', `127.0.0.1:${a.port}`);
    assert.equal(await bannerVia(`${g.wsUrl}/desks/?token=t1`), 'A\n');
  });

  test('a value that is neither host:port nor JSON is refused with 1008 and a reason naming the token', async () => {
    await admin.set('vnc:broken', 'not a target');
    const c = await wsCloseOf(`${g.wsUrl}/desks/?token=broken`, ['binary']);
    assert.equal(c.code, 1008);
    assert.match(c.reason, /^desks: token "broken": its value is not valid/);
    assert.doesNotMatch(c.reason, /not a target/);
    await admin.hset('vnc:hash', 'host', '127.0.0.1');
    const wrongType = await wsCloseOf(`${g.wsUrl}/desks/?token=hash`, ['binary']);
    assert.equal(wrongType.code, 1008, 'a key of another type is a bad value, not a store failure');
    assert.equal(wrongType.reason, 'desks: token "hash": its key holds no string value (expected "host:port" or JSON)');
    const missing = await wsCloseOf(`${g.wsUrl}/desks/`, ['binary']);
    assert.equal(missing.code, 1008);
    assert.match(missing.reason, /no token/);
  });

  test('plain HTTP to a token-only bridge app is 426', async () => {
    const res = await fetch(`${g.url}/desks/`);
    assert.equal(res.status, 426);
    const text = await res.text();
    assert.match(text, /the targets in redis:\/\/127\.0\.0\.1:\d+\/3 under vnc:/);
    assert.doesNotMatch(text, /p@ss/);
  });

  test('Redis stopped: handshake completed, close 1013 PH_ERR_TOKEN_STORE at once, one error event; restarted: works again', async () => {
    await admin.set('vnc:up', `127.0.0.1:${a.port}`);
    assert.equal(await bannerVia(`${g.wsUrl}/desks/?token=up`), 'A\n');
    const errors = collect('error');
    const upgrades = collect('upgrade');
    try {
      await redis.stop();
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        const c = await wsCloseOf(`${g.wsUrl}/desks/?token=up`, ['binary']);
        const ms = Date.now() - started;
        assert.ok(c.opened, 'the handshake is completed: the browser sees the code, not 1006');
        assert.equal(c.code, 1013);
        assert.match(c.reason, /^PH_ERR_TOKEN_STORE: desks: token store redis:\/\/127\.0\.0\.1:\d+\/3 (failed \(ECONNREFUSED\)|did not answer within 1000 ms)$/);
        assert.ok(ms < 2500, `answered in ${ms} ms (timeout 1000 ms)`);
      }
      const storeErrors = errors.events.filter((e) => e.code === 'PH_ERR_TOKEN_STORE');
      assert.equal(storeErrors.length, 1, 'an outage is one error event, not one per client');
      assert.equal(storeErrors[0]!.app, 'desks');
      const refused = upgrades.events.filter((e) => e.code === 'PH_ERR_TOKEN_STORE');
      assert.equal(refused.length, 3);
      assert.ok(refused.every((e) => e.closeCode === 1013 && e.accepted === false));
      for (const e of [...errors.events, ...upgrades.events]) assert.doesNotMatch(JSON.stringify(e), /p@ss|w#rd/, 'the password is never in an event');

      await redis.restart();
      assert.equal(await bannerVia(`${g.wsUrl}/desks/?token=up`), 'A\n', 'the token (persisted) works again as soon as Redis answers');
      admin.disconnect();
      admin = await client(url());
    } finally {
      errors.stop();
      upgrades.stop();
    }
  });

  test('Redis slow (SIGSTOP): close 1013 after the 1 s timeout, never a hang; answering again (SIGCONT): works at once', async () => {
    await admin.set('vnc:slow', `127.0.0.1:${b.port}`);
    assert.equal(await bannerVia(`${g.wsUrl}/desks/?token=slow`), 'B\n');
    process.kill(redis.pid, 'SIGSTOP');
    try {
      const started = Date.now();
      const c = await wsCloseOf(`${g.wsUrl}/desks/?token=slow`, ['binary']);
      const ms = Date.now() - started;
      assert.ok(c.opened);
      assert.equal(c.code, 1013);
      assert.match(c.reason, /^PH_ERR_TOKEN_STORE: desks: token store redis:\/\/127\.0\.0\.1:\d+\/3 did not answer within 1000 ms$/);
      assert.ok(ms >= 900 && ms < 2500, `closed after ${ms} ms`);
      // 30 clients at once against a store that does not answer: every one is closed with 1013, none hangs.
      const t0 = Date.now();
      const all = await Promise.all(Array.from({ length: 30 }, () => wsCloseOf(`${g.wsUrl}/desks/?token=slow`, ['binary'])));
      const allMs = Date.now() - t0;
      assert.deepEqual([...new Set(all.map((x) => `${x.opened} ${x.code}`))], ['true 1013']);
      assert.ok(allMs < 3000, `30 clients answered in ${allMs} ms`);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    assert.equal(await bannerVia(`${g.wsUrl}/desks/?token=slow`), 'B\n');
  });

  test('the connection to Redis is shared by lookups and closed once idle, never under a lookup in flight', async () => {
    const clients = async () => ((await admin.client('LIST')) as string).trim().split('\n').length;
    closeTokenRedisClients(); // the gateway's lookups share the pool: start from none
    await new Promise((r) => setTimeout(r, 100));
    const before = await clients();
    const store = { host: '127.0.0.1', port: redis.port, db: 3, password: PASSWORD, tls: false, namespace: 'vnc' };
    const targets = new RedisTokenTargets(store, 'desks', 1000, 150);
    await admin.set('vnc:idle', `127.0.0.1:${a.port}`);
    // Bursts of lookups around the idle deadline: none fails, one connection serves them all.
    for (let round = 0; round < 8; round++) {
      const found = await Promise.all(Array.from({ length: 20 }, () => targets.lookup('idle')));
      assert.ok(found.every((f) => 'target' in f && f.target.port === a.port), JSON.stringify(found.find((f) => !('target' in f))));
      assert.equal(await clients(), before + 1, 'one shared connection');
      await new Promise((r) => setTimeout(r, 100 + round * 10));
    }
    const deadline = Date.now() + 3000;
    while ((await clients()) > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await clients(), before, 'closed once idle');
    assert.ok('target' in (await targets.lookup('idle')), 'and opened again by the next lookup');
  });

  test('a wrong password: close 1013 with the reason Redis gave, the password not in it', async () => {
    const wrong = new RedisTokenTargets({ host: '127.0.0.1', port: redis.port, db: 0, password: 'not-it', tls: false }, 'desks');
    const err = await wrong.lookup('x').then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof TokenStoreError);
    assert.equal(err.closeCode, 1013);
    assert.match(err.message, /failed \((WRONGPASS|ERR)\)/);
    assert.doesNotMatch(err.message, /not-it/);
  });
});

describe('porthole bridge --token-redis', { timeout: 60_000 }, () => {
  let redis: RedisHandle;
  let admin: Redis;
  let a: TcpPeer;
  let b: TcpPeer;

  before(async () => {
    redis = await startRedis({ password: PASSWORD });
    admin = await client(`redis://:${PASSWORD_URL}@127.0.0.1:${redis.port}/2`);
    a = await tcpPeer({ banner: 'A\n' });
    b = await tcpPeer({ banner: 'B\n' });
  });
  after(async () => {
    admin?.disconnect();
    await redis?.close();
    await a?.close();
    await b?.close();
  });

  test('--token-redis URL with --token-namespace: lookups per connection; the password is not logged', async () => {
    const cli = await startBridgeCli(['127.0.0.1:0', '--token-redis', `redis://:${PASSWORD_URL}@127.0.0.1:${redis.port}/2`, '--token-namespace', 'desk']);
    try {
      await admin.set('desk:one', `127.0.0.1:${a.port}`);
      assert.equal(await bannerVia(`${cli.wsUrl}/websockify?token=one`), 'A\n');
      await admin.set('desk:one', JSON.stringify({ host: '127.0.0.1', port: b.port }));
      assert.equal(await bannerVia(`${cli.wsUrl}/websockify?token=one`), 'B\n');
      await admin.del('desk:one');
      const c = await wsCloseOf(`${cli.wsUrl}/websockify?token=one`, ['binary']);
      assert.equal(c.code, 1008);
      assert.equal(c.reason, 'bridge: unknown token "one"');
      assert.match(cli.stderr(), /bridging WebSocket connections to the targets in redis:\/\/127\.0\.0\.1:\d+\/2 under desk:/);
      assert.doesNotMatch(cli.stderr(), /p@ss|w#rd|%40/);
    } finally {
      assert.equal(await cli.stop(), 0);
    }
  });

  test("websockify's spelling: --token-plugin TokenRedis --token-source host:port:db:password:namespace; Redis down → 1013 logged with its code", async () => {
    const cli = await startBridgeCli(['127.0.0.1:0', '--token-plugin', 'TokenRedis', '--token-source', `127.0.0.1:${redis.port}:2:${PASSWORD}:fleet:eu`]);
    try {
      await admin.set('fleet:eu:d7', `127.0.0.1:${b.port}`);
      assert.equal(await bannerVia(`${cli.wsUrl}/?token=d7`), 'B\n');
      // a Redis that is not there at all: a second bridge pointed at a dead port
      const dead = await freePort();
      const down = await startBridgeCli(['127.0.0.1:0', '--token-redis', `redis://127.0.0.1:${dead}/0`]);
      try {
        const c = await wsCloseOf(`${down.wsUrl}/?token=d7`, ['binary']);
        assert.ok(c.opened);
        assert.equal(c.code, 1013);
        assert.match(c.reason, /^PH_ERR_TOKEN_STORE: bridge: token store redis:\/\/127\.0\.0\.1:\d+\/0 failed \(ECONNREFUSED\)$/);
        const deadline = Date.now() + 3000;
        while (!logEvents(down).some((e) => e.code === 'PH_ERR_TOKEN_STORE') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.ok(logEvents(down).some((e) => e.code === 'PH_ERR_TOKEN_STORE'), `logged: ${down.stderr()}`);
      } finally {
        await down.stop();
      }
      assert.doesNotMatch(cli.stderr(), new RegExp(PASSWORD.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
    } finally {
      assert.equal(await cli.stop(), 0);
    }
  });

  test('the library: startBridgeServer({ tokenRedis: URL, tokenNamespace }); a URL that does not parse throws before listening', async () => {
    const server = await startBridgeServer({ tokenRedis: `redis://:${PASSWORD_URL}@127.0.0.1:${redis.port}/2`, tokenNamespace: 'lib' });
    try {
      await admin.set('lib:x', `127.0.0.1:${a.port}`);
      assert.equal(await bannerVia(`ws://127.0.0.1:${server.port}/?token=x`), 'A\n');
    } finally {
      await server.close();
      closeTokenRedisClients();
    }
    await assert.rejects(startBridgeServer({ tokenRedis: 'redis://:hunter2@h/x' }), (err: Error) => err instanceof TypeError && /^tokenRedis: .*database number/.test(err.message) && !err.message.includes('hunter2'));
    await assert.rejects(startBridgeServer({ target: { host: '127.0.0.1', port: 1 }, tokenNamespace: 'x' }), /tokenNamespace: only used with tokenRedis/);
  });

  test('bad usage exits 2 with the reason', async () => {
    const cases: [string[], RegExp][] = [
      [['--token-redis', 'http://h:1'], /--token-redis: .*expected redis:\/\//],
      [['--token-redis', 'redis://h:1/0', '--token-file', '/etc/hosts'], /give one of --token-file and --token-redis/],
      [['127.0.0.1:5900', '--token-redis', 'redis://h:1/0'], /give one of TARGET_HOST:PORT and --token-redis/],
      [['--token-plugin', 'JWTTokenApi', '--token-source', 'k'], /knows TokenFile, ReadOnlyTokenFile and TokenRedis/],
      [['--token-plugin', 'TokenRedis'], /--token-plugin and --token-source go together/],
      [['--token-namespace', 'x', '--token-file', '/etc/hosts'], /--token-namespace goes with --token-redis/],
      [['--token-plugin', 'TokenRedis', '--token-source', 'h:1:0::ns', '--token-namespace', 'y'], /namespace is in --token-source already/],
    ];
    for (const [args, why] of cases) {
      const run = runCli(['bridge', '127.0.0.1:0', ...args.filter((x) => x !== '127.0.0.1:5900'), ...(args.includes('127.0.0.1:5900') ? ['127.0.0.1:5900'] : [])]);
      assert.equal(await run.exited, 2, `${args.join(' ')}: ${run.stderr()}`);
      assert.match(run.stderr(), why);
    }
  });
});

describe("websockify's own TokenRedis reads the same keys to the same targets", { timeout: 90_000 }, () => {
  let redis: RedisHandle;
  let admin: Redis;
  let a: TcpPeer;
  let b: TcpPeer;
  let websockify: ChildProcess | undefined;
  let wsPort = 0;

  before(async () => {
    ensureTools([
      { check: '/usr/bin/websockify', pkg: 'websockify' },
      { check: '/usr/lib/python3/dist-packages/redis/__init__.py', pkg: 'python3-redis' },
      { check: '/usr/lib/python3/dist-packages/simplejson/__init__.py', pkg: 'python3-simplejson' },
    ]);
    redis = await startRedis();
    admin = await client(redis.url);
    a = await tcpPeer({ banner: 'A\n' });
    b = await tcpPeer({ banner: 'B\n' });
  });
  after(async () => {
    if (websockify && websockify.exitCode === null) {
      websockify.kill('SIGKILL');
      await once(websockify, 'exit');
    }
    admin?.disconnect();
    await redis?.close();
    await a?.close();
    await b?.close();
  });

  test('Debian websockify --token-plugin TokenRedis and porthole bridge reach the same target for each token', async () => {
    assert.ok(existsSync('/usr/lib/python3/dist-packages/redis/__init__.py'), 'python3-redis is installed (websockify TokenRedis needs it)');
    // Debian's websockify (0.10) reads JSON {"host": "host:port"}; later ones read plain host:port too.
    await admin.set('first', JSON.stringify({ host: `127.0.0.1:${a.port}` }));
    await admin.set('second', JSON.stringify({ host: `127.0.0.1:${b.port}` }));
    wsPort = await freePort();
    let err = '';
    websockify = spawn('/usr/bin/websockify', ['--token-plugin', 'TokenRedis', '--token-source', `127.0.0.1:${redis.port}`, `127.0.0.1:${wsPort}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    websockify.stderr!.on('data', (d) => (err += d));
    websockify.stdout!.on('data', (d) => (err += d));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (websockify.exitCode !== null) throw new Error(`websockify exited ${websockify.exitCode}: ${err}`);
      const up = await new Promise<boolean>((ok) => {
        const s = net.connect(wsPort, '127.0.0.1');
        s.once('connect', () => (s.destroy(), ok(true)));
        s.once('error', () => ok(false));
      });
      if (up) break;
      if (Date.now() > deadline) throw new Error(`websockify did not listen: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const cli = await startBridgeCli(['127.0.0.1:0', '--token-plugin', 'TokenRedis', '--token-source', `127.0.0.1:${redis.port}`]);
    try {
      for (const [token, banner] of [['first', 'A\n'], ['second', 'B\n']] as const) {
        assert.equal(await bannerVia(`ws://127.0.0.1:${wsPort}/websockify?token=${token}`), banner, `websockify, token ${token}: ${err}`);
        assert.equal(await bannerVia(`${cli.wsUrl}/websockify?token=${token}`), banner, `porthole, token ${token}`);
      }
      // Swap the values: both follow at the next connection (neither caches).
      await admin.set('first', JSON.stringify({ host: `127.0.0.1:${b.port}` }));
      assert.equal(await bannerVia(`ws://127.0.0.1:${wsPort}/websockify?token=first`), 'B\n');
      assert.equal(await bannerVia(`${cli.wsUrl}/websockify?token=first`), 'B\n');
    } finally {
      await cli.stop();
    }
  });

  test("websockify's TokenRedis.lookup and ours agree on every value websockify reads", async () => {
    const values: Record<string, string> = {
      j1: JSON.stringify({ host: '10.1.2.3:5901' }),
      j2: '{"host":"vnc.internal:5999"}',
      j3: JSON.stringify({ host: `127.0.0.1:${a.port}`, extra: true }),
    };
    for (const [k, v] of Object.entries(values)) await admin.set(k, v);
    const script = [
      'import json, sys',
      'from websockify.token_plugins import TokenRedis',
      'p = TokenRedis(sys.argv[1])',
      'print(json.dumps({t: p.lookup(t) for t in sys.argv[2:]}))',
    ].join('\n');
    const py = spawn(PYTHON, ['-c', script, `127.0.0.1:${redis.port}`, ...Object.keys(values)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    py.stdout.on('data', (d) => (out += d));
    py.stderr.on('data', (d) => (err += d));
    const [code] = (await once(py, 'exit')) as [number];
    assert.equal(code, 0, err);
    const theirs = JSON.parse(out.trim().split('\n').pop()!) as Record<string, [string, string]>;
    const ours = new RedisTokenTargets({ host: '127.0.0.1', port: redis.port, db: 0, tls: false }, 'x');
    for (const token of Object.keys(values)) {
      const found = await ours.lookup(token);
      assert.ok('target' in found, `${token}: ${JSON.stringify(found)}`);
      assert.deepEqual({ host: theirs[token]![0], port: Number(theirs[token]![1]) }, found.target, token);
    }
    closeTokenRedisClients();
  });
});

describe('rediss:// (TLS to Redis)', { timeout: 60_000 }, () => {
  let dir: string;
  let redis: RedisHandle;
  let tlsPort: number;
  let a: TcpPeer;

  before(async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { execFileSync } = await import('node:child_process');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    dir = mkdtempSync(join(tmpdir(), 'porthole-rediss-'));
    const ssl = (args: string[]) => execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=porthole test redis CA']);
    ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=localhost']);
    writeFileSync(join(dir, 'ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    ssl(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext']);
    tlsPort = await freePort();
    redis = await startRedis({
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', join(dir, 'srv.pem'), '--tls-key-file', join(dir, 'srv.key'), '--tls-ca-cert-file', join(dir, 'ca.pem'), '--tls-auth-clients', 'no'],
    });
    a = await tcpPeer({ banner: 'A\n' });
    const admin = await client(redis.url);
    await admin.set('secure', `127.0.0.1:${a.port}`);
    admin.disconnect();
  });
  after(async () => {
    await redis?.close();
    await a?.close();
    const { rmSync } = await import('node:fs');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('rediss:// verifies Redis\'s certificate: trusted (NODE_EXTRA_CA_CERTS) it works; untrusted the client gets 1013 naming the TLS failure', async () => {
    const { join } = await import('node:path');
    const trusted = await startBridgeCli(['127.0.0.1:0', '--token-redis', `rediss://localhost:${tlsPort}/0`], { NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') });
    try {
      assert.equal(await bannerVia(`${trusted.wsUrl}/?token=secure`), 'A\n');
    } finally {
      await trusted.stop();
    }
    const untrusted = await startBridgeCli(['127.0.0.1:0', '--token-redis', `rediss://localhost:${tlsPort}/0`]);
    try {
      const c = await wsCloseOf(`${untrusted.wsUrl}/?token=secure`, ['binary']);
      assert.ok(c.opened);
      assert.equal(c.code, 1013);
      assert.match(c.reason, /^PH_ERR_TOKEN_STORE: bridge: token store rediss:\/\/localhost:\d+\/0 failed \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)$/);
    } finally {
      await untrusted.stop();
    }
  });
});

test('a Redis that wants a client certificate hangs up on the bridge: each client gets 1013, and the bridge lives on (a second TLS error of one socket is heard)', { timeout: 60_000 }, async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'porthole-rediss-mtls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const certs = redisCertificates(dir);
  const tlsPort = await freePort();
  const redis = await startRedis({ args: ['--tls-port', String(tlsPort), '--tls-cert-file', certs.serverCert, '--tls-key-file', certs.serverKey, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'yes'] });
  t.after(() => redis.close());
  const bridge = await startBridgeCli(['127.0.0.1:0', '--token-redis', `rediss://localhost:${tlsPort}/0`], { NODE_EXTRA_CA_CERTS: certs.ca });
  t.after(() => bridge.stop());
  for (let i = 0; i < 5; i++) {
    const c = await wsCloseOf(`${bridge.wsUrl}/?token=any`, ['binary']);
    assert.equal(c.code, 1013, `connection ${i}: ${c.code} ${c.reason}\n${bridge.stderr()}`);
    assert.match(c.reason, /^PH_ERR_TOKEN_STORE: /);
  }
  assert.equal(bridge.child.exitCode, null, `the bridge exited:\n${bridge.stderr()}`);
  assert.doesNotMatch(bridge.stderr(), /uncaught/i);
});
