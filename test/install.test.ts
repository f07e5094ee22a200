// `npm install -g .` from a clone that was never built: npm's prepare builds the programs, so the commands work.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ROOT } from './helpers/programs.js';

/** What a clone holds that the build reads; node_modules is linked, so that no download is needed. */
const SOURCES = ['compileall', 'package.json', 'package-lock.json', 'tsconfig.json', 'src', 'scripts', 'man', 'README.md', 'docs'];

function exec(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { ...options, timeout: 110_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

t.test('npm install -g . builds and installs the five programs', async (t) => {
  const dir = t.testdir({ clone: {}, prefix: {} });
  const clone = join(dir, 'clone');
  const prefix = join(dir, 'prefix');
  for (const source of SOURCES) cpSync(join(ROOT, source), join(clone, source), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'));
  t.notOk(existsSync(join(clone, 'keygen')), 'the clone has no built programs');

  // Run from `npm test`, npm's own settings (its prefix among them) are in the environment.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  const install = await exec('npm', ['install', '-g', '.', '--prefix', prefix, '--no-audit', '--no-fund', '--foreground-scripts'], { cwd: clone, env });
  t.equal(install.code, 0, 'npm install -g . succeeds', { stderr: install.stderr });
  t.match(install.stderr + install.stdout, /compileall: built dec_client dec_server enc_client enc_server keygen/, 'prepare ran ./compileall');

  for (const name of ['keygen', 'enc_server', 'dec_server', 'enc_client', 'dec_client']) {
    const help = await exec(join(prefix, 'bin', name), ['--version'], { env });
    t.equal(help.code, 0, `${name} is installed and runs`, { stderr: help.stderr });
  }
  const key = await exec(join(prefix, 'bin', 'keygen'), ['36'], { env });
  t.match(key.stdout, /^[A-Z ]{36}\n$/, 'the installed keygen makes a key');
});
