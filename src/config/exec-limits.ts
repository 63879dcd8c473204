/**
 * What the kernel lets an app be started with. `execve(2)` fails with E2BIG
 * when one argument or environment string is longer than MAX_ARG_STRLEN
 * (32 pages = 131072 bytes on Linux, counting the final NUL), or when all of
 * them together pass ARG_MAX (a quarter of the stack limit: 2 MiB with the
 * usual 8 MiB stack). A registration past these limits is refused with the
 * field named, instead of being stored and failing at `start` (issue 8).
 */

/** One `KEY=VALUE` string of the environment, or the `cmd` (`/bin/sh -c CMD`), in bytes with its NUL. */
export const MAX_EXEC_STRING_BYTES = 131_072;
/**
 * The app's `env` and `cmd` together. Half of the usual ARG_MAX, leaving room
 * for what the gateway adds (PATH, HOME, PORT… and a pointer per string).
 */
export const MAX_EXEC_TOTAL_BYTES = 512 * 1024;
/** Variables in an app's `env`. */
export const MAX_ENV_VARS = 1024;

/** Problems of an app's `cmd` and `env` against the limits above (`at` is the app's key path). */
export function execLimitProblems(app: { cmd?: string; env?: Readonly<Record<string, string>> }, at: string): string[] {
  const problems: string[] = [];
  let total = 0;
  if (app.cmd !== undefined) {
    const bytes = Buffer.byteLength(app.cmd) + 1;
    total += bytes;
    if (bytes > MAX_EXEC_STRING_BYTES) problems.push(`${at}.cmd: ${bytes} bytes; a command may be at most ${MAX_EXEC_STRING_BYTES} bytes (Linux MAX_ARG_STRLEN; put a long script in a file and run that)`);
  }
  const entries = Object.entries(app.env ?? {});
  if (entries.length > MAX_ENV_VARS) problems.push(`${at}.env: ${entries.length} variables; at most ${MAX_ENV_VARS}`);
  for (const [key, value] of entries) {
    const bytes = Buffer.byteLength(key) + 1 + Buffer.byteLength(value) + 1;
    total += bytes;
    if (bytes > MAX_EXEC_STRING_BYTES) problems.push(`${at}.env.${key}: ${bytes} bytes as ${key}=VALUE; a variable may be at most ${MAX_EXEC_STRING_BYTES} bytes (Linux MAX_ARG_STRLEN, counting "${key}=" and the final NUL)`);
  }
  if (total > MAX_EXEC_TOTAL_BYTES && entries.length <= MAX_ENV_VARS) {
    problems.push(`${at}.env: ${total} bytes in total with cmd; env and cmd may take at most ${MAX_EXEC_TOTAL_BYTES} bytes in total (Linux ARG_MAX, with room for the variables the gateway adds)`);
  }
  return problems;
}
