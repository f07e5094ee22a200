// systemd socket activation, with systemd-socket-activate standing in for systemd: the server serves the socket it is
// passed on descriptor 3, without a PORT; without one passed to it, PORT is required.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { bin, freePort, run, waitForPort } from './helpers/programs.js';
import { childrenOf, model, randomSymbols, tempDir, waitUntil } from './helpers/wire.js';

const ACTIVATE = ['/usr/bin/systemd-socket-activate', '/bin/systemd-socket-activate'].find((path) => existsSync(path));

t.test('PORT is required unless systemd passes a socket to this very process', async (t) => {
  for (const env of [{}, { LISTEN_PID: '1', LISTEN_FDS: '1' }]) {
    const child = spawn(bin('enc_server'), [], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const [code] = await once(child, 'exit');
    t.equal(code, 1, `exit 1 with ${JSON.stringify(env)}`);
    t.match(stderr, /^enc_server: error: PORT is missing \(it may be left out only when systemd passes the listening socket\)\n$/);
  }
});

t.test('served on the socket systemd-socket-activate passes', { skip: ACTIVATE ? false : 'systemd-socket-activate is not installed (Debian package systemd)' }, async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const activate = spawn(ACTIVATE!, ['-l', `127.0.0.1:${port}`, bin('enc_server'), '-v'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  activate.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(activate, 'exit');
  t.teardown(async () => {
    if (activate.exitCode === null && activate.signalCode === null) {
      activate.kill('SIGTERM');
      await exited;
    }
  });
  await waitForPort(port, 30_000);

  const clients = Array.from({ length: 8 }, (_, i) => {
    const text = randomSymbols(1000 + i);
    const key = randomSymbols(1000 + i);
    writeFileSync(join(dir, `t${i}`), `${text}\n`);
    writeFileSync(join(dir, `k${i}`), `${key}\n`);
    return { i, want: `${model('encrypt', text, key)}\n` };
  });
  const results = await Promise.all(clients.map(({ i }) => run('enc_client', [join(dir, `t${i}`), join(dir, `k${i}`), String(port)])));
  results.forEach((result, i) => {
    t.equal(result.code, 0, `client ${i}: exit 0`, { stderr: result.stderr });
    t.equal(result.stdout.toString('latin1'), clients[i].want, `client ${i}: the right ciphertext`);
  });
  // systemd-socket-activate execs the server in its own process: that is the server's pid.
  await waitUntil(() => childrenOf(activate.pid!).length === 5, 5000, 'five workers under the activated server');
  t.match(stderr, /Execing .*enc_server/, 'systemd-socket-activate started the server');
  t.equal((stderr.match(/: enc_client, \d+ bytes in, .* ok$/gm) ?? []).length, 8, 'the server logged the eight jobs');

  activate.kill('SIGTERM');
  const [code, signal] = await exited;
  t.same([code, signal], [null, 'SIGTERM'], 'SIGTERM stops it, and it dies by that signal');
});
