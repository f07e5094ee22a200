// How soon a server accepts: from its spawn until a connect() to its port succeeds, against `node -e 0` run alternately.
//   npx tsx bench/first-accept.ts [RUNS] [PROGRAM]   (after ./compileall; RUNS 21, PROGRAM ./enc_server)
// NODE_EXTRA_CA_CERTS is removed from every child's environment: it costs each Node start some 40 ms, and users seldom set it.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { median } from './lib.js';

const runs = Number(process.argv[2] ?? 21);
const program = process.argv[3] ?? join(__dirname, '..', 'enc_server');
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

const connects = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

const since = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

/** ms from the spawn to the first connection; then SIGTERM, and the server's exit (it waits for its workers). */
async function firstAccept(): Promise<number> {
  const port = await freePort();
  const start = process.hrtime.bigint();
  const server = spawn(program, [String(port)], { env, stdio: 'ignore' });
  // A poll a millisecond apart: a busy loop would take the core the server starts on.
  while (!(await connects(port))) await new Promise((resolve) => setTimeout(resolve, 1));
  const ms = since(start);
  const exit = once(server, 'exit');
  server.kill('SIGTERM');
  await exit;
  return ms;
}

async function nodeStart(): Promise<number> {
  const start = process.hrtime.bigint();
  await once(spawn(process.execPath, ['-e', '0'], { env, stdio: 'ignore' }), 'exit');
  return since(start);
}

async function main(): Promise<void> {
  const accepts: number[] = [];
  const starts: number[] = [];
  for (let i = 0; i < runs; i++) {
    // Which goes first alternates.
    if (i % 2 === 0) starts.push(await nodeStart());
    accepts.push(await firstAccept());
    if (i % 2 === 1) starts.push(await nodeStart());
  }
  const ratios = accepts.map((ms, i) => ms / starts[i]);
  console.log(`${program}: first accept ${median(accepts).toFixed(1)} ms (${Math.min(...accepts).toFixed(1)}-${Math.max(...accepts).toFixed(1)}), median of ${runs}`);
  console.log(`node -e 0: ${median(starts).toFixed(1)} ms (${Math.min(...starts).toFixed(1)}-${Math.max(...starts).toFixed(1)})`);
  console.log(`first accept / node -e 0: ${median(ratios).toFixed(2)} (median of the runs' ratios)`);
}

void main();
