#!/usr/bin/env node
/**
 * The `porthole` command. Each subcommand lives in its own file and exports
 * `register(program)`; this file only wires them together.
 */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { register as serve } from './serve.js';
import { register as apps } from './apps.js';
import { register as echo } from './echo.js';
import { register as connect } from './connect.js';
import { register as bench } from './bench.js';
import { register as bridge } from './bridge.js';
import { register as stdio } from './stdio.js';
import { register as doctor } from './doctor.js';
import { register as conformance } from './conformance.js';
import { register as trust } from './trust.js';
import { register as passwd } from './passwd.js';
import { register as init } from './init.js';
import { clearStartupEnviron } from './clear-environ.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('porthole')
  .description('One port in front of every app, with WebSockets that just work.')
  .version(pkg.version)
  .showHelpAfterError('(run with --help for usage)')
  .addHelpText(
    'after',
    `
Examples:
  porthole serve --config porthole.yaml          run the gateway on 127.0.0.1:50000
  porthole serve --listen 0.0.0.0:8080           listen on every interface, port 8080 (needs "auth" in the config)
  porthole passwd --name alice                   a users entry for "auth: login" (see docs/auth.md)
  porthole trust                                 trust the local CA of "tls: internal" (HTTPS, see docs/tls.md)
  porthole init echo                             write a small WebSocket app that works behind Porthole (--list for the others)

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or invalid config.`,
  );
program.exitOverride((err) => {
  process.exit(err.exitCode === 1 && err.code.startsWith('commander.') && err.code !== 'commander.executeSubCommandAsync' ? 2 : err.exitCode);
});

for (const register of [serve, apps, echo, connect, bridge, stdio, bench, doctor, conformance, init, trust, passwd]) register(program);

// The gateway is the parent of every app: its /proc/PID/environ must show no
// secret to a same-user app (issue 8). Cleared before any app can exist.
program.hook('preAction', (_program, action) => {
  if (action.name() !== 'serve') return;
  const result = clearStartupEnviron();
  if (!result.cleared) {
    process.stderr.write(`porthole: warning: could not clear the startup environment (${result.reason}); an app running as this user can read it in /proc/${process.pid}/environ\n`);
  }
});

await program.parseAsync(process.argv);
