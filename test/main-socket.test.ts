// The main process's hold on the listening socket (src/server/listener.ts): it gives its own up once it has forked
// and keeps the copy the first worker ready sends back. A main killed before it took that copy leaves no worker
// listening for ever; a first generation that all exits before one is ready leaves nothing to serve: one line, exit 1.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { WORKER_SOCKET_FD } from '../src/server/messages.js';
import { bin, freePort, writeProgram } from './helpers/programs.js';
import { canConnect, childrenOf, processState, rawRoundTrip, tempDir, waitUntil } from './helpers/wire.js';

function holds(pid: number, link: string): boolean {
  return readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === link;
    } catch {
      return false;
    }
  });
}

t.test('the main process killed before it took its copy of the socket: the worker leaves, the port closes', async (t) => {
  const port = await freePort();
  const server = spawn(bin('enc_server'), [String(port), '--workers', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = once(server, 'exit');
  let worker = 0;
  t.teardown(async () => {
    if (worker && processState(worker) !== null) process.kill(worker, 'SIGKILL');
    server.kill('SIGKILL');
    await exited;
  });
  // Stopped as soon as its worker is forked, the main process cannot take the copy the worker sends with 'ready'.
  await waitUntil(() => (worker = childrenOf(server.pid!)[0] ?? 0) !== 0, 10_000, 'the worker forked');
  process.kill(server.pid!, 'SIGSTOP');
  const socket = readlinkSync(`/proc/${worker}/fd/${WORKER_SOCKET_FD}`);
  if (holds(server.pid!, socket)) {
    t.comment('the main process took the copy before it could be stopped: nothing to see this time');
    return;
  }
  await rawRoundTrip(port, 16);
  t.pass('the worker serves: it is listening, and has sent its copy');
  process.kill(server.pid!, 'SIGKILL');
  await exited;
  await waitUntil(() => processState(worker) === null || processState(worker) === 'Z', 5_000, 'the orphaned worker to exit');
  t.pass('the orphaned worker exits');
  t.notOk(await canConnect(port), 'and nothing listens on the port');
});

t.test('every worker of the first generation exits before one is ready: a last line saying so, exit 1', async (t) => {
  const dir = tempDir(t);
  const program = join(dir, 'enc_server');
  writeProgram(program, 'enc_server', { before: "process.env.OTP_WORKER === '1' && process.exit(3)" });
  const port = await freePort();
  const server = spawn(program, [String(port), '--workers', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(server, 'exit');
  t.teardown(() => void server.kill('SIGKILL'));
  let done = false;
  void exited.then(() => (done = true));
  await waitUntil(() => done, 10_000, 'the server to exit');
  const [code] = await exited;
  t.equal(code, 1, 'exit 1');
  const lines = stderr.split('\n').filter(Boolean);
  t.match(
    lines.at(-1),
    new RegExp(`^enc_server: error: every worker exited before one was listening \\(the last: worker \\d+ exited with code 3\\); nothing can accept on 127\\.0\\.0\\.1:${port} any more$`),
    'the last line says why',
  );
  t.ok(lines.length <= 2 && lines.every((line) => /^enc_server: /.test(line)), "before it at most one line, the other worker's death", { lines });
  t.notOk(await canConnect(port), 'and the port is closed');
});
