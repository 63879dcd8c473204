/**
 * `porthole passwd`: a password hash for `users[].password_hash`, or with
 * `--token` a new token and the SHA-256 for `auth_tokens` (docs/auth.md).
 * The password is read from stdin (one line), never from the command line,
 * where `ps` and the shell's history would keep it.
 */
import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { hashPassword, newToken, tokenDigest } from '../auth/password.js';

export function register(program: Command): void {
  program
    .command('passwd')
    .description('print a password hash for "users" (auth: login), or with --token a token for "auth_tokens"')
    .option('--name <user>', 'print a whole users entry for this name')
    .option('--token', 'make a random token instead: prints the token (give it out) and its sha256 (put it in auth_tokens)')
    .addHelpText(
      'after',
      `
The password is read from stdin: typed without echo on a terminal, or piped
("printf '%s\\n' 'secret' | porthole passwd"). The hash is scrypt (Node's
crypto, N=2^15, r=8, p=3) with a random salt: "scrypt$N$r$p$SALT$HASH".

Example:
  porthole passwd --name alice
  # users:
  #   - name: alice
  #     password_hash: "scrypt$32768$8$3$…"`,
    )
    .action(async (opts: { name?: string; token?: boolean }) => {
      if (opts.token) {
        const token = newToken();
        process.stdout.write(`token: ${token}\n`);
        process.stdout.write(`auth_tokens:\n  - name: ${opts.name ?? 'agent'}\n    sha256: ${tokenDigest(token)}\n`);
        return;
      }
      const password = await readPassword();
      if (!password) {
        process.stderr.write('porthole passwd: an empty password is refused\n');
        process.exit(2);
      }
      const hash = await hashPassword(password);
      process.stdout.write(opts.name ? `users:\n  - name: ${opts.name}\n    password_hash: "${hash}"\n` : `${hash}\n`);
    });
}

/** One line from stdin; on a terminal, prompted and not echoed. */
function readPassword(): Promise<string> {
  const tty = process.stdin.isTTY === true;
  if (tty) process.stderr.write('Password: ');
  // On a terminal the typed characters are swallowed: nothing is written back.
  const muted = new Writable({ write: (_c, _e, done) => done() });
  const rl = createInterface({ input: process.stdin, output: tty ? muted : undefined, terminal: tty });
  return new Promise((ok) => {
    let got = '';
    rl.once('line', (line) => {
      got = line;
      rl.close();
    });
    rl.once('close', () => {
      if (tty) process.stderr.write('\n');
      ok(got);
    });
  });
}
