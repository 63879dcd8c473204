/**
 * `porthole init TEMPLATE [DIR]`: write a small app that works behind
 * Porthole from a template (see src/toolkit/init.ts, templates/).
 */
import { Command } from 'commander';
import { PortholeError } from '../errors.js';
import { initApp } from '../toolkit/init.js';
import { TEMPLATES } from '../toolkit/init-templates.js';

interface InitFlags {
  list?: boolean;
  name?: string;
  force?: boolean;
}

/** Wrong input is bad usage (exit 2); a directory that cannot be written is a runtime failure (exit 1). */
const USAGE_CODES = new Set(['PH_ERR_INIT_TEMPLATE', 'PH_ERR_INIT_NAME', 'PH_ERR_INIT_NOT_EMPTY']);

export function register(program: Command): void {
  program
    .command('init')
    .argument('[template]', `one of: ${TEMPLATES.map((t) => t.name).join(', ')} (--list says what each is)`)
    .argument('[dir]', 'where to write it (default: ./NAME)')
    .summary('write a small app that works behind Porthole from a template')
    .description(
      'Write a small app that already works behind Porthole: it reads PORT and BASE_PATH (and WS_PORT when registered with a ws_port), ' +
        'its page builds its WebSocket URL from its own address (so it works under /NAME/, at NAME.localhost and over HTTPS), ' +
        'and it comes with its porthole.yaml entry. Then it prints the steps to run and register it.',
    )
    .option('-l, --list', 'list the templates, one line each')
    .option('--name <name>', 'the app name (default: DIR\'s last part when it is a valid app name, else the template\'s name)')
    .option('-f, --force', 'write into DIR even if it holds files (the template\'s files are overwritten, others are left)')
    .addHelpText(
      'after',
      `
Templates:
${TEMPLATES.map((t) => `  ${t.name.padEnd(6)} ${t.summary}`).join('\n')}

Examples:
  porthole init --list                 the templates
  porthole init echo                   writes ./echo, app name "echo"
  porthole init chat rooms             writes ./rooms, app name "rooms"
  porthole init vnc --name desk        writes ./desk, app name "desk" (needs Xvfb, x11vnc, xterm)
  porthole init stdio tools/shout      writes ./tools/shout, apps "shout" (the page) and "shout-program"
  porthole init echo echo --force      writes over the files of ./echo

Then, as printed: cd DIR, npm install (echo, chat, vnc), and
"porthole apps add NAME --file porthole.yaml --start" with "porthole serve" running
(the steps name porthole as it runs from DIR: npx porthole inside the project that
installed it, else porthole on PATH or its path), or put the apps: entry of
DIR/porthole.yaml into your porthole.yaml.

Exit codes: 0 written, 1 DIR cannot be written (PH_ERR_INIT_WRITE), 2 bad usage:
an unknown template (PH_ERR_INIT_TEMPLATE), an invalid --name (PH_ERR_INIT_NAME),
DIR not empty without --force (PH_ERR_INIT_NOT_EMPTY).`,
    )
    .action(async (template: string | undefined, dir: string | undefined, flags: InitFlags) => {
      if (flags.list) {
        const width = Math.max(...TEMPLATES.map((t) => t.name.length));
        process.stdout.write(TEMPLATES.map((t) => `${t.name.padEnd(width)}  ${t.summary}\n`).join(''));
        return;
      }
      if (!template) {
        process.stderr.write(`porthole init: which template? ${TEMPLATES.map((t) => t.name).join(', ')} (porthole init --list says what each is)\n`);
        process.exit(2);
      }
      try {
        const r = await initApp({ template, dir, name: flags.name, force: flags.force });
        const out = [
          `Wrote the ${r.template.name} template as app "${r.name}" in ${r.dir}:`,
          ...r.files.map((f) => `  ${f}`),
          '',
          ...(r.template.needs ? [`It needs ${r.template.needs}.`, ''] : []),
          'Next, with "porthole serve" running:',
          ...r.next.commands.map((c) => `  ${c}`),
          '',
          `Then open ${r.next.open.join(' or ')}`,
          `(Or add the apps: entr${r.apps.length > 1 ? 'ies' : 'y'} of porthole.yaml to your gateway's config; README.md says more.)`,
        ];
        process.stdout.write(`${out.join('\n')}\n`);
      } catch (err) {
        if (!(err instanceof PortholeError)) throw err;
        process.stderr.write(`porthole init: ${err.message} [${err.code}]\n`);
        process.exit(USAGE_CODES.has(err.code) ? 2 : 1);
      }
    });
}
