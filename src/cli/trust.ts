/**
 * `porthole trust`: where the local CA of `tls: internal` is, and installing
 * it into the system store and Chromium's NSS database (issue 10, section 1).
 * The CA is made now if the gateway has not made it yet, so a machine can
 * be set up before the first start.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfigFile } from '../config/load.js';
import { ConfigError, PortholeError } from '../errors.js';
import { defaultDataDir } from '../server/create-server.js';
import { prepareDataDir } from '../server/data-dir.js';
import { installNss, installSystem, SYSTEM_CA_DIR, type TrustStep } from '../tls/trust-store.js';

interface TrustOptions {
  config?: string;
  data?: string;
  system: boolean;
  systemDir?: string;
  nssdb: string | boolean;
}

export function register(program: Command): void {
  program
    .command('trust')
    .description('install the local CA of "tls: internal" into the system store and Chromium\'s NSS database')
    .option('-c, --config <file>', 'YAML config file whose "data" to use (default: ./porthole.yaml when it exists)')
    .option('-d, --data <dir>', `state directory (default: the config's "data", else ${defaultDataDir()})`)
    .option('--system-dir <dir>', `copy the CA into this directory instead of ${SYSTEM_CA_DIR} (update-ca-certificates runs only for that one)`)
    .option('--no-system', 'leave the system store alone')
    .option('--nssdb <dir>', 'NSS database to add the CA to (default: ~/.pki/nssdb, which Chromium reads)')
    .option('--no-nssdb', 'leave NSS databases alone')
    .addHelpText(
      'after',
      `
The CA is in DATA/private/tls/ca.crt (its key, mode 0600, beside it); it is
made now when "porthole serve" has not made it yet. The system store takes
root: run "sudo porthole trust" for it, and "porthole trust --no-system" as
yourself for your own Chromium. Firefox keeps its own store: import ca.crt in
its settings (Certificates, Authorities).

Exit codes: 0 when every store asked for trusts the CA, 1 when one could not be
changed (each line says why), 2 on an invalid option or config.`,
    )
    .action(async (opts: TrustOptions) => {
      process.exitCode = await trust(opts);
    });
}

async function trust(opts: TrustOptions): Promise<number> {
  let dataDir: string;
  try {
    const configFile = opts.config ?? (existsSync('porthole.yaml') ? 'porthole.yaml' : undefined);
    const config = configFile ? loadConfigFile(configFile) : undefined;
    dataDir = resolve(opts.data ?? config?.data ?? defaultDataDir());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`porthole: ${err.message}\n`);
    return 2;
  }
  const { ensureLocalCa } = await import('../tls/local-ca.js');
  let ca;
  try {
    prepareDataDir(dataDir);
    ca = await ensureLocalCa(dataDir);
  } catch (err) {
    const code = err instanceof PortholeError ? `${err.code}: ` : '';
    process.stderr.write(`porthole: ${code}${(err as Error).message}\n`);
    return 1;
  }
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(`CA certificate: ${ca.certFile}${ca.created ? ' (made now)' : ''}`);
  out(`  name: ${ca.name}`);
  out(`  SHA-256 fingerprint: ${ca.fingerprint}`);
  const steps: TrustStep[] = [];
  if (opts.system) steps.push(installSystem(ca, opts.systemDir ?? SYSTEM_CA_DIR));
  if (opts.nssdb !== false) steps.push(installNss(ca, typeof opts.nssdb === 'string' ? resolve(opts.nssdb) : join(homedir(), '.pki', 'nssdb')));
  for (const s of steps) out(`${s.target}: ${s.result === 'failed' ? 'NOT installed: ' : ''}${s.message}`);
  if (!steps.length) out('nothing installed (--no-system --no-nssdb)');
  return steps.some((s) => s.result === 'failed') ? 1 : 0;
}
