// Process names on Linux: pgrep -x and killall find a server and its workers by the name it
// was invoked as, and ps shows the port and main-or-worker on the command line.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { invokedName } from '../src/cli/process-name.js';
import { bin, freePort, waitForPort } from './helpers/programs.js';

t.test('invokedName()', async (t) => {
  t.equal(invokedName('enc_server', '/usr/local/bin/otp_enc_d'), 'otp_enc_d', 'a symlink: its own name');
  t.equal(invokedName('enc_server', '/work/otp/enc_server'), 'enc_server');
  t.equal(invokedName('enc_server', '/work/otp/src/programs/enc_server.ts'), 'enc_server', 'a source file: no .ts');
  t.equal(invokedName('enc_server', ''), 'enc_server', 'no script (node -e): the program');
});

const linux = existsSync('/proc/self/comm');

function comm(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, '');
}

/** The command line as ps shows it: arguments joined by spaces, the padding dropped. */
function cmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0+$/, '').replace(/\0/g, ' ');
}

function pgrep(args: string[]): Promise<number[]> {
  return new Promise((resolve) => {
    execFile('pgrep', args, (_err, stdout) => resolve(stdout.split('\n').filter(Boolean).map(Number)));
  });
}

/** Starts the server at `path` with two workers; resolves with its pid and its workers' once all are named. */
async function start(t: Test, path: string, name: string): Promise<{ main: number; workers: number[]; port: number }> {
  const port = await freePort();
  const child: ChildProcess = spawn(path, ['--workers', '2', String(port)], { stdio: 'ignore' });
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  });
  await waitForPort(port);
  const main = child.pid!;
  // The workers name themselves as they start, a moment after the port opens.
  for (let i = 0; i < 400; i++) {
    const workers = await pgrep(['-P', String(main)]);
    if (workers.length === 2 && workers.every((pid) => cmdline(pid) === `${name} ${port} worker`)) return { main, workers, port };
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { main, workers: await pgrep(['-P', String(main)]), port };
}

for (const invoked of ['enc_server', 'otp_enc_d']) {
  t.test(`a server invoked as ${invoked}`, { skip: linux ? false : 'not Linux: no /proc/PID/comm' }, async (t) => {
    let path = bin('enc_server');
    if (invoked !== 'enc_server') {
      path = join(t.testdir({}), invoked);
      symlinkSync(bin('enc_server'), path);
    }
    const { main, workers, port } = await start(t, path, invoked);
    t.equal(workers.length, 2, 'two workers');
    t.equal(comm(main), invoked, `main: process name '${invoked}' (pgrep -x, killall)`);
    t.equal(cmdline(main), `${invoked} ${port} main`, `main: command line '${invoked} ${port} main' (ps, pgrep -a)`);
    for (const pid of workers) {
      t.equal(comm(pid), invoked, `worker: process name '${invoked}'`);
      t.equal(cmdline(pid), `${invoked} ${port} worker`, `worker: command line '${invoked} ${port} worker'`);
    }
    const found = await pgrep(['-x', invoked]);
    t.ok([main, ...workers].every((pid) => found.includes(pid)), `pgrep -x ${invoked} finds the main process and both workers`);
  });
}

/** Runs the program at `path` with `args`; its exit code, stdout and stderr, or a failed assertion after 20 s. */
async function runAt(t: Test, path: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const deadline = setTimeout(() => {
    t.fail(`${path} ${args.join(' ')}: still running after 20 s`);
    child.kill('SIGKILL');
  }, 20_000);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(deadline);
  return { code, stdout, stderr };
}

// The older course scripts' names, and one of no course at all.
const LINKS: Record<string, string> = { enc_client: 'otp_enc', dec_client: 'otp_dec', enc_server: 'otp_enc_d', dec_server: 'otp_dec_d', keygen: 'make_pad' };

for (const [program, invoked] of Object.entries(LINKS)) {
  t.test(`${program} invoked as ${invoked}: its messages, --help and --version say ${invoked}`, async (t) => {
    const path = join(t.testdir({}), invoked);
    symlinkSync(bin(program), path);
    const version = await runAt(t, path, ['--version']);
    t.match(version.stdout, new RegExp(`^${invoked} \\d+\\.\\d+\\.\\d+\\n$`), '--version');
    const help = await runAt(t, path, ['--help']);
    t.match(help.stdout, new RegExp(`^usage: ${invoked} `), '--help');
    t.notMatch(help.stdout, new RegExp(`usage: ${program}`), '--help does not use the file name');
    const usage = await runAt(t, path, ['--no-such-option']);
    t.equal(usage.code, 1, 'a usage error: exit 1');
    t.match(usage.stderr, new RegExp(`^${invoked}: error: .*; usage: ${invoked} \\[options\\] `), 'a usage error');
    // An error past the command line: a client's missing file, a server's port taken by
    // itself (its listener fails before any worker starts), keygen's length too large.
    const port = String(await freePort());
    const holder = program.endsWith('_server') ? spawn(bin(program), [port], { stdio: 'ignore' }) : null;
    t.teardown(() => void holder?.kill('SIGKILL'));
    if (holder) await waitForPort(Number(port));
    const args = program === 'keygen' ? ['99999999999999999999'] : program.endsWith('_client') ? ['/nonexistent/text', '/nonexistent/key', port] : [port];
    const failed = await runAt(t, path, args);
    t.equal(failed.code, 1, `${invoked} ${args.join(' ')}: exit 1`);
    t.match(failed.stderr, new RegExp(`^${invoked}: error: `), `an error of its own names ${invoked}`, { stderr: failed.stderr });
  });
}
