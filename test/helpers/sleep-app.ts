/**
 * For the idle_stop / wake_on_request tests: a real `porthole serve` with the
 * sleep fixture registered through the admin API, and ways to read its state,
 * its own log and the gateway's `app` events.
 */
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { startAdmin, type AdminGateway } from './admin.js';
import { jsonLines } from './cli.js';
import { sleep } from './net.js';

export const SLEEP_FIXTURE = fileURLToPath(new URL('../fixtures/sleep/app.mjs', import.meta.url));

export function sleepAppCmd(env: Record<string, string | number> = {}): string {
  const prefix = Object.entries(env)
    .map(([k, v]) => `${k}=${v} `)
    .join('');
  return `${prefix}exec ${process.execPath} ${SLEEP_FIXTURE}`;
}

export interface SleepGateway extends AdminGateway {
  state(name: string): Promise<Record<string, any>>;
  /** Polls until the app's state is `state`; returns the app view. */
  until(name: string, state: string, timeoutMs?: number): Promise<Record<string, any>>;
  /** The app's own log (with the `[porthole]` lines). */
  appLog(name: string): Promise<string[]>;
  /** The gateway's `app` events for this app so far. */
  appEvents(name: string): Record<string, any>[];
}

export async function startSleepGateway(opts: { config?: string } = {}): Promise<SleepGateway> {
  const gw = await startAdmin(opts);
  const state = async (name: string) => (await gw.api('GET', `/_porthole/api/apps/${name}`)).body.app as Record<string, any>;
  return {
    ...gw,
    state,
    until: async (name, want, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const app = await state(name);
        if (app.state === want) return app;
        if (Date.now() > deadline) throw new Error(`app ${name} not ${want} after ${timeoutMs} ms: ${JSON.stringify(app)}`);
        await sleep(50);
      }
    },
    appLog: async (name) => (await gw.api('GET', `/_porthole/api/apps/${name}/logs?lines=500`)).body.lines as string[],
    appEvents: (name) => jsonLines(gw.stdout()).filter((l) => l.event === 'app' && l.app === name) as Record<string, any>[],
  };
}

/**
 * A port for an app's `port`, free now, below the kernel's ephemeral range (32768 and up) and
 * picked at random: a port of that range could be taken meanwhile as the local end of another
 * test's outgoing connection (no app can bind it then), and apps given no port get one from
 * 9000–9999, where tests running in parallel could hand the same port to apps that sleep (and
 * hold no port) or listen only after DELAY_MS. The test of that case (idle-wake.test.ts) uses
 * allocation.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await bindable(port)) return port;
  }
  throw new Error('no free port found in 20000-31999');
}

function bindable(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = net.createServer();
    s.once('error', () => ok(false));
    s.listen(port, '127.0.0.1', () => s.close(() => ok(true)));
  });
}
