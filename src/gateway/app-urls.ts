/**
 * Where an app can be opened: under its prefix on the gateway's address, and
 * at the root of its own host names — `{name}.localhost` (browsers resolve
 * `*.localhost` to loopback themselves, RFC 6761 §6.3) and
 * `{name}.{base_domain}` when one is configured. Shown by the API, the CLI
 * and the `gateway listening` log line.
 */
import type { AppConfig, Config } from '../config/schema.js';
import { isLoopbackAddress } from './host-header.js';

export interface ListenAt {
  host: string;
  port: number;
}

export function appUrls(app: AppConfig, cfg: Pick<Config, 'base_domain' | 'tls'>, at?: ListenAt): string[] {
  const scheme = cfg.tls ? 'https' : 'http';
  const prefix = `${app.prefix ?? `/${app.name}`}/`;
  const port = at ? `:${at.port}` : '';
  const unspecified = at !== undefined && (at.host === '0.0.0.0' || at.host === '::');
  const shown = !at ? undefined : unspecified ? 'localhost' : at.host.includes(':') ? `[${at.host}]` : at.host;
  const urls = [shown ? `${scheme}://${shown}${port}${prefix}` : prefix];
  // {name}.localhost reaches a listener on loopback (or on every address), not one on a LAN address only.
  if (!at || unspecified || isLoopbackAddress(at.host)) urls.push(`${scheme}://${app.name}.localhost${port}/`);
  if (cfg.base_domain) urls.push(`${scheme}://${app.name}.${cfg.base_domain}${port}/`);
  return urls;
}
