/**
 * A real `porthole serve` child with a temp data dir, and a small client for its admin API.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServe } from './cli.js';

export const APP_FIXTURE = fileURLToPath(new URL('../fixtures/admin/app.mjs', import.meta.url));

export interface AdminGateway extends Awaited<ReturnType<typeof startServe>> {
  dataDir: string;
  token: string;
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Record<string, any>; headers: Headers }>;
  webapp(body: Record<string, unknown>): Promise<{ status: number; body: Record<string, any> }>;
  cleanup(): Promise<void>;
}

export async function startAdmin(opts: { config?: string; dataDir?: string; env?: NodeJS.ProcessEnv; args?: string[] } = {}): Promise<AdminGateway> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'porthole-admin-'));
  const args = ['--data', dataDir, '--log-format', 'json', ...(opts.args ?? [])];
  if (opts.config !== undefined) {
    const file = join(dataDir, 'porthole.yaml');
    writeFileSync(file, opts.config);
    args.push('--config', file);
  }
  const run = await startServe(args, { env: opts.env });
  const token = readFileSync(join(dataDir, 'private', 'token'), 'utf8').trim();
  const api: AdminGateway['api'] = async (method, path, body, headers = {}) => {
    const res = await fetch(`${run.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: Record<string, any> = {};
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { text };
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  return {
    ...run,
    dataDir,
    token,
    api,
    webapp: (body) => api('POST', '/webapp', body),
    cleanup: async () => {
      await run.stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The cmd that runs the test app fixture. */
export function appCmd(env: Record<string, string | number> = {}): string {
  const prefix = Object.entries(env)
    .map(([k, v]) => `${k}=${v} `)
    .join('');
  return `${prefix}exec ${process.execPath} ${APP_FIXTURE}`;
}
