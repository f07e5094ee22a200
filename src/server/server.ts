// A server's main process: listens, reads each HELLO, and hands accepted sockets to a pool of workers.
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import type { Direction } from '../alphabet.js';
import { encodeFrame } from '../streams/frame-encoder.js';
import {
  ErrorCode,
  HANDSHAKE_TIMEOUT_MS,
  IDLE_TIMEOUT_MS,
  LINGER_MS,
  PROTOCOL_VERSION,
  Role,
  SHUTDOWN_GRACE_MS,
  errorFrame,
} from '../protocol.js';
import { reason } from '../cli.js';
import { hostPort } from '../host-port.js';
import { readOpening, thaw, type Refusal } from './handshake.js';
import type { JobReport, ToMain, ToWorker } from './messages.js';
import { article, plural } from '../words.js';

export interface ServerOptions {
  program: string;
  direction: Direction;
  port: number;
  host: string;
  workers: number;
  verbose: boolean;
}

interface Worker {
  child: ChildProcess;
  ready: boolean;
  /** Who the worker is serving, for the log; null while idle. */
  job: string | null;
}

interface Waiting {
  socket: Socket;
  peer: string;
  rest: Buffer;
}

const ROLE_NAMES: Record<number, string> = { [Role.ENCRYPT]: 'enc_client', [Role.DECRYPT]: 'dec_client' };

export function runServer(options: ServerOptions): void {
  const { program, direction } = options;
  const role = direction === 'encrypt' ? Role.ENCRYPT : Role.DECRYPT;
  const log = (line: string): void => void process.stderr.write(`${program}: ${line}\n`);

  const workers = new Set<Worker>();
  const queue: Waiting[] = [];
  const handshaking = new Set<Socket>();
  let stopping = false;
  let lastSpawns: number[] = [];

  const spawn = (): void => {
    // A worker that cannot start would otherwise be replaced in a tight loop.
    const now = Date.now();
    lastSpawns = lastSpawns.filter((t) => now - t < 1000);
    if (lastSpawns.length >= options.workers * 2) {
      setTimeout(spawn, 1000).unref();
      return;
    }
    lastSpawns.push(now);
    const child = fork(process.argv[1], process.argv.slice(2), {
      env: { ...process.env, OTP_WORKER: '1' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const worker: Worker = { child, ready: false, job: null };
    workers.add(worker);
    child.on('message', (message: ToMain) => {
      if (message.kind === 'done') {
        report(worker.job ?? '?', message.report);
        worker.job = null;
      }
      worker.ready = true;
      if (stopping && worker.job === null) child.disconnect();
      else dispatch();
    });
    child.on('error', (err) => log(`worker ${child.pid}: ${err.message}`));
    child.on('exit', (code, signal) => {
      workers.delete(worker);
      if (stopping) return void (workers.size === 0 && process.exit(0));
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      log(`worker ${child.pid} ${how}${worker.job ? ` while serving ${worker.job}` : ''}; starting another`);
      spawn();
    });
  };

  const report = (peer: string, job: JobReport): void => {
    if (job.outcome === 'ok' && !options.verbose) return;
    const what = job.outcome === 'ok' ? 'ok' : `${job.outcome === 'fault' ? 'failed' : 'broken'}: ${job.detail ?? 'unknown'}`;
    log(`${peer}: ${ROLE_NAMES[role]}, ${job.received} bytes in, ${plural(job.symbols, 'symbol')} out, ${job.ms} ms, ${what}`);
  };

  const dispatch = (): void => {
    for (const worker of workers) {
      if (queue.length === 0) return;
      if (!worker.ready || worker.job !== null || !worker.child.connected) continue;
      const { socket, peer, rest } = queue.shift()!;
      worker.job = peer;
      const message: ToWorker = { kind: 'job', rest: rest.toString('base64') };
      worker.child.send(message, socket, { keepOpen: false }, (err) => {
        if (err) {
          log(`${peer}: could not hand the connection to worker ${worker.child.pid}: ${err.message}`);
          socket.destroy();
        }
      });
    }
  };

  const reject = (socket: Socket, code: ErrorCode, message: string): void => {
    socket.end(encodeFrame(errorFrame(code, message)));
    // Reading on until the client closes keeps the error frame from being lost to a reset.
    thaw(socket);
    const linger = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    socket.once('close', () => clearTimeout(linger));
  };

  const judge = (version: number, clientRole: number): Refusal | null => {
    if (version !== PROTOCOL_VERSION) {
      return {
        code: ErrorCode.VERSION,
        reason: `protocol version ${version} is not spoken here; this server speaks ${PROTOCOL_VERSION}`,
        logLine: `rejected: protocol version ${version}`,
      };
    }
    if (clientRole !== role) {
      const who = ROLE_NAMES[clientRole] ?? `client of role ${clientRole}`;
      return {
        code: ErrorCode.ROLE,
        reason: 'this server does not serve your role',
        logLine: `rejected: ${article(who)} ${who} is not served here`,
      };
    }
    return null;
  };

  const accept = async (socket: Socket): Promise<void> => {
    const peer = hostPort(socket.remoteAddress ?? '?', socket.remotePort ?? '?');
    socket.on('error', () => {}); // every failure is seen and logged through the handshake or the worker
    if (stopping) return void socket.destroy();
    handshaking.add(socket);
    const opening = await readOpening(socket, HANDSHAKE_TIMEOUT_MS, IDLE_TIMEOUT_MS, judge);
    // Gone from the set: a shutdown has already answered it.
    if (!handshaking.delete(socket) || socket.destroyed) return;
    if (!('rest' in opening)) {
      if (!opening.empty || options.verbose) log(`${peer}: ${opening.logLine ?? `dropped: ${opening.reason}`}`);
      return reject(socket, opening.code, opening.reason);
    }
    if (stopping) return reject(socket, ErrorCode.SHUTDOWN, 'the server is shutting down');
    queue.push({ socket, peer, rest: opening.rest });
    dispatch();
  };

  const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => void accept(socket));
  server.on('error', (err: NodeJS.ErrnoException) => {
    // Once listening, an error is a failed accept (out of descriptors, say): that
    // connection is lost, and the server goes on.
    if (server.listening) return log(`cannot accept a connection: ${reason(err)}`);
    log(`error: cannot listen on ${hostPort(options.host, options.port)}: ${reason(err)}`);
    process.exit(1);
  });

  const stop = (): void => {
    if (stopping) {
      for (const worker of workers) worker.child.kill('SIGKILL');
      process.exit(1);
    }
    stopping = true;
    server.close();
    const waiting = [...handshaking, ...queue.splice(0).map((job) => job.socket)];
    handshaking.clear();
    for (const socket of waiting) reject(socket, ErrorCode.SHUTDOWN, 'the server is shutting down');
    for (const worker of workers) if (worker.job === null) worker.child.disconnect();
    if (workers.size === 0) process.exit(0);
    setTimeout(() => {
      for (const worker of workers) worker.child.kill('SIGKILL');
    }, SHUTDOWN_GRACE_MS).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  server.listen(options.port, options.host, () => {
    for (let i = 0; i < options.workers; i++) spawn();
  });
}
