// The manual pages: each renders cleanly, and names every option its program's --help lists.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { bin, ROOT } from './helpers/programs';

const PROGRAMS = ['keygen', 'enc_server', 'dec_server', 'enc_client', 'dec_client'];
const SECTIONS = ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'EXIT STATUS', 'EXAMPLES', 'SEE ALSO'];

interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

function exec(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Output> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Long options (`--host`) and short ones (`-v`) in a program's --help text. */
function helpOptions(help: string): string[] {
  const long = help.match(/--[a-z][a-z-]*/g) ?? [];
  const short = [...help.matchAll(/^\s+(-[A-Za-z])\b/gm)].map((m) => m[1]);
  return [...new Set([...long, ...short])];
}

/** The options of `options` that the rendered page does not mention as whole words. */
function missingOptions(options: string[], page: string): string[] {
  return options.filter((option) => !new RegExp(`(^|[^\\w-])${option}(?![\\w-])`, 'm').test(page));
}

/**
 * Lines of a --help text's prose (what comes before its options) broken early: well
 * short of its widest line (under three quarters of it), yet not ending a sentence or
 * clause, with more prose on the next line.
 */
function raggedLines(help: string): string[] {
  const lines = help.split(/^options:$/m)[0].split('\n');
  const width = Math.max(...lines.map((line) => line.length));
  return lines.filter((line, i) => line !== '' && (lines[i + 1] ?? '') !== '' && !/[.:;]$/.test(line) && line.length < 0.75 * width);
}

/** Plain text from a rendered page: no overstriking, no SGR, hyphen and minus glyphs as '-'. */
function plain(rendered: string): string {
  return rendered
    .replace(/.\x08/g, '')
    .replace(/\x1b\[[0-9;]*m/g, '')
    .replace(/[\u2010\u2011\u2212]/g, '-');
}

interface Checked {
  name: string;
  help: Output;
  man: Output;
  groff: Output;
}

const RENDER_ENV = { MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat', LC_ALL: 'C.UTF-8' };

async function check(name: string): Promise<Checked> {
  const page = join(ROOT, 'man', `${name}.1`);
  const [help, man, groff] = await Promise.all([
    exec(bin(name), ['--help']),
    exec('man', ['-P', 'cat', '-l', page], RENDER_ENV),
    // -ww: every warning; -z: no output, only the diagnostics on stderr.
    exec('groff', ['-man', '-Tutf8', '-ww', '-z', page], RENDER_ENV),
  ]);
  return { name, help, man, groff };
}

t.test('option matching', async (t) => {
  t.same(helpOptions('  -v, --verbose    log\n      --host ADDR  x\n  -h, --help  y\n'), ['--verbose', '--host', '--help', '-v', '-h']);
  t.same(missingOptions(['--host', '--workers', '-v'], 'OPTIONS\n  --host ADDR\n  -v, --verbose\n'), ['--workers']);
  t.same(raggedLines('usage: x\n\nOne two three four.\nFive\nsix seven eight nine.\noptions:\n  -a\n  -b\n'), ['Five'], 'a line the next word would have fitted on');
  t.same(raggedLines('usage: x\n\nOne two three four.\nFive six seven eight.\nNine.\n'), [], 'a sentence may end a line early');
  t.same(missingOptions(['--host'], 'see --hostname'), ['--host'], 'a longer option does not count');
  t.same(missingOptions(['-v'], 'use --verbose'), ['-v'], 'a short option is not found inside a long one');
});

// All five are rendered and asked for --help at once; the subtests then only look.
const pending = new Map(PROGRAMS.map((name) => [name, check(name)]));

for (const name of PROGRAMS) {
  t.test(name, async (t) => {
    t.ok(existsSync(bin(name)), `./${name} is built (run ./compileall)`);
    t.ok(existsSync(join(ROOT, 'man', `${name}.1`)), `man/${name}.1 exists`);
    const { help, man, groff } = await pending.get(name)!;

    t.equal(help.code, 0, `${name} --help exits 0`);
    const options = helpOptions(help.stdout);
    t.ok(options.includes('--help') && options.includes('--version'), `${name} --help lists its options`, { options });

    t.equal(groff.code, 0, 'groff renders it');
    t.equal(groff.stderr, '', 'groff -ww has no warnings');
    t.equal(man.code, 0, 'man -l renders it');
    t.equal(man.stderr, '', 'man -l writes nothing on stderr');

    const page = plain(man.stdout);
    t.ok(page.trim().length > 0, 'the rendered page is not empty');
    for (const section of SECTIONS) {
      t.match(page, new RegExp(`^${section}$`, 'm'), `section ${section} is there`);
    }
    t.match(page, new RegExp(`^\\s+${name} - \\S`, 'm'), 'NAME gives the name and what it does');
    t.match(readFileSync(join(ROOT, 'man', `${name}.1`), 'utf8'), new RegExp(`^\\.TH ${name.toUpperCase()} 1 `, 'm'), '.TH names it, section 1');

    t.same(missingOptions(options, page), [], `every option of ${name} --help is in the man page`);
    t.match(help.stdout, /^Exit status: /m, `${name} --help gives the exit statuses`);
    t.same(raggedLines(help.stdout), [], `${name} --help's prose is filled, not broken early`);
    const variables = [...new Set(page.match(/\bOTP_[A-Z_]+\b/g) ?? [])];
    t.same(variables.filter((v) => !help.stdout.includes(v)), [], `${name} --help names the environment variables the man page lists`);
  });
}
