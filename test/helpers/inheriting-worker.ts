// A stand-in for a server's worker, for test/server-listener.test.ts: adopts the listening socket it inherited, answers each connection with its pid, and sends the main process a copy with 'ready'.
import type { SendHandle } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { adoptListener } from '../../src/server/listener.js';
import { WORKER_SOCKET_FD } from '../../src/server/messages.js';

const handle = adoptListener(WORKER_SOCKET_FD);
createServer((socket) => socket.end(`worker ${process.pid}`)).listen(handle as Parameters<Server['listen']>[0], () => {
  process.send!({ kind: 'ready' }, handle as unknown as SendHandle);
});
process.on('disconnect', () => process.exit(0));
