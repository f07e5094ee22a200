// The Node-internals trick in src/server/listener.ts: net._createServerHandle binds without
// listening, so the process that made the socket never accepts on it, and a child it sends
// the handle to accepts on it directly. Fails where a Node version drops or changes it.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { bindListener, ListenError } from '../src/server/listener.js';
import { canConnect, tempDir } from './helpers/wire.js';
import { freePort } from './helpers/programs.js';

t.test('bound, not listening; a child given the handle accepts on it; the parent never does', async (t) => {
  const port = await freePort();
  const handle = await bindListener('127.0.0.1', port);
  t.teardown(() => handle.close());
  t.notOk(await canConnect(port), 'bound but not listening: connections are refused');

  const dir = tempDir(t);
  const child = join(dir, 'child.js');
  writeFileSync(
    child,
    `process.on('message', (m, handle) => {
       require('net').createServer((s) => s.end('child ' + process.pid)).listen(handle, () => process.send('listening'));
     });`,
  );
  const worker = fork(child, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.teardown(() => void worker.kill('SIGKILL'));
  worker.send('listen', handle as never);
  const [message] = await once(worker, 'message');
  t.equal(message, 'listening', 'the child listens on the handle');
  const replies = await Promise.all(
    Array.from({ length: 20 }, () =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let reply = '';
        socket.setEncoding('utf8').on('data', (chunk: string) => (reply += chunk)).on('end', () => resolve(reply)).on('error', reject);
      }),
    ),
  );
  t.same(new Set(replies), new Set([`child ${worker.pid}`]), 'every connection is accepted by the child, none by this process');
});

t.test('a port in use is a ListenError EADDRINUSE (libuv would keep it for the listen); so is an unknown host a ListenError', async (t) => {
  const port = await freePort();
  const other = createServer().listen(port, '127.0.0.1');
  await once(other, 'listening');
  t.teardown(() => other.close());
  await bindListener('127.0.0.1', port).then(
    () => t.fail('bound to a port in use'),
    (err: unknown) => t.ok(err instanceof ListenError && err.code === 'EADDRINUSE', `ListenError ${(err as ListenError).code}`),
  );
  await bindListener('no-such-host.invalid', port).then(
    () => t.fail('bound to an unknown host'),
    (err: unknown) => t.ok(err instanceof ListenError && /^E/.test(err.code), `an unknown host: ListenError ${(err as ListenError).code}`),
  );
});
