// The Node-internals trick in src/server/listener.ts: the main process listens (listen(2)) before any worker exists,
// forks its workers with the descriptor and gives its own handle up in that same turn, so that it never accepts; a
// client that connects before a worker is up waits in the kernel's backlog and is served once one is; a worker sends a
// copy back, which later workers are forked with. Fails where a Node version drops or changes any of it.
import { fork, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { listenOn, ListenError, MainSocket, type ListenHandle } from '../src/server/listener.js';
import { WORKER_SOCKET_FD } from '../src/server/messages.js';
import { freePort } from './helpers/programs.js';

function forkWorker(fd: number): ChildProcess {
  const stdio: StdioOptions = ['ignore', 'ignore', 'inherit', 'ipc'];
  stdio[WORKER_SOCKET_FD] = fd;
  return fork(join(__dirname, 'helpers', 'inheriting-worker.ts'), [], { stdio });
}

/** Connects, and resolves with what the server sends before it closes; `connected` as soon as the kernel completed the connection. */
function ask(port: number): { connected: Promise<void>; reply: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  let reply = '';
  return {
    connected: new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject)),
    reply: new Promise((resolve, reject) => {
      socket.setEncoding('utf8').on('data', (chunk: string) => (reply += chunk)).on('end', () => resolve(reply)).on('error', reject);
    }),
  };
}

const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms).unref())]);

t.test('listening before any worker; the workers accept, the main process never does; a copy serves later workers', async (t) => {
  const port = await freePort();
  const socket = new MainSocket(await listenOn('127.0.0.1', port), true);
  const first = forkWorker(socket.fd!);
  socket.forked();
  t.teardown(() => void first.kill('SIGKILL'));
  t.equal(socket.fd, null, 'the handle listened on here is given up in the turn that forked');
  // Stopped before it can listen: only the kernel can complete these connections.
  process.kill(first.pid!, 'SIGSTOP');
  const early = Array.from({ length: 10 }, () => ask(port));
  await within(Promise.all(early.map((e) => e.connected)), 5000, 'the connections made before any worker listens');
  t.pass('connections complete before any worker listens: they wait in the backlog');
  const ready = once(first, 'message') as Promise<[unknown, ListenHandle | undefined]>;
  process.kill(first.pid!, 'SIGCONT');
  const replies = await within(Promise.all(early.map((e) => e.reply)), 20_000, 'the early connections served');
  t.same(new Set(replies), new Set([`worker ${first.pid}`]), 'every early connection is served by the worker, none by this process');

  const [message, copy] = await within(ready, 20_000, "the worker's ready");
  t.same(message, { kind: 'ready' }, 'the worker says it is ready');
  socket.offer(copy);
  t.type(socket.fd, 'number', 'and sends a copy of the socket, kept');
  first.kill('SIGKILL');
  await once(first, 'exit');
  const second = forkWorker(socket.fd!);
  t.teardown(() => void second.kill('SIGKILL'));
  t.teardown(() => socket.close());
  const later = await within(Promise.all(Array.from({ length: 10 }, () => ask(port).reply)), 20_000, 'the later connections served');
  t.same(new Set(later), new Set([`worker ${second.pid}`]), 'a worker forked with the copy serves, after the first is gone');
});

t.test('a port in use is a ListenError EADDRINUSE (a bind keeps it for the listen); so is an unknown host a ListenError', async (t) => {
  const port = await freePort();
  const other = createServer().listen(port, '127.0.0.1');
  await once(other, 'listening');
  t.teardown(() => other.close());
  await listenOn('127.0.0.1', port).then(
    () => t.fail('listening on a port in use'),
    (err: unknown) => t.ok(err instanceof ListenError && err.code === 'EADDRINUSE', `ListenError ${(err as ListenError).code}`),
  );
  await listenOn('no-such-host.invalid', port).then(
    () => t.fail('listening on an unknown host'),
    (err: unknown) => t.ok(err instanceof ListenError && /^E/.test(err.code), `an unknown host: ListenError ${(err as ListenError).code}`),
  );
});
