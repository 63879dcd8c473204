/**
 * Secrets kept in files (the cluster's peer secret, Redis's password): read
 * only when no other user of the machine can read them too, as ssh treats a
 * private key.
 */
import { readFileSync, statSync } from 'node:fs';

/** The file's content, trimmed; throws with a message naming `what`, the file and the fix. */
export function readPrivateFile(file: string, what: string): string {
  let mode: number;
  let text: string;
  try {
    mode = statSync(file).mode & 0o777;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${what} in ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (mode & 0o007) throw new Error(`${what} in ${file} is readable by every user of this machine (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${file}`);
  return text.trim();
}
