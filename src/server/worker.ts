// A server's worker process: takes sockets from the main process and runs one job at a time.
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';
import type { Direction } from '../alphabet.js';
import { CIPHER_WINDOW, errorFrame, ErrorCode, IDLE_TIMEOUT_MS, LINGER_MS } from '../protocol.js';
import { Cipher } from '../streams/cipher.js';
import { FrameDecoder } from '../streams/frame-decoder.js';
import { FrameEncoder } from '../streams/frame-encoder.js';
import { MemoryKeeper } from '../streams/memory-keeper.js';
import type { JobReport, ToMain, ToWorker } from './messages.js';

export function runWorker(direction: Direction): void {
  const send = (message: ToMain): void => {
    if (process.connected) process.send!(message);
  };
  // The main process owns the signals: Ctrl-C reaches the whole process group, and a
  // worker must not drop its job because of it. It leaves when the main process does.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: ToWorker, socket?: Socket) => {
    if (message.kind !== 'job') return;
    if (!socket) return send({ kind: 'done', report: lostJob() });
    serve(socket, direction, Buffer.from(message.rest, 'base64'), message.read, (report) => send({ kind: 'done', report }));
  });
  send({ kind: 'ready' });
}

function lostJob(): JobReport {
  return { pid: process.pid, received: 0, symbols: 0, ms: 0, outcome: 'broken', detail: 'the socket closed in transit' };
}

/**
 * One job: socket → frame decoder → cipher → frame encoder → socket. `rest`: the bytes the
 * main process read past the HELLO; `read`: all it read, HELLO included.
 */
function serve(socket: Socket, direction: Direction, rest: Buffer, read: number, finish: (report: JobReport) => void): void {
  const started = Date.now();
  // The client half-closes after END and still reads the result.
  socket.allowHalfOpen = true;
  socket.setNoDelay(true);
  if (rest.length > 0) socket.unshift(rest);

  const cipher = new Cipher(direction, CIPHER_WINDOW, true);
  let lingering: NodeJS.Timeout | undefined;
  const linger = (): void => {
    lingering ??= setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
  socket.setTimeout(IDLE_TIMEOUT_MS, () => {
    // The fault goes down the pipeline like any other, behind the frames already sent.
    if (!cipher.fault && !cipher.completed && cipher.writable) {
      cipher.write(errorFrame(ErrorCode.TIMEOUT, `no traffic for ${IDLE_TIMEOUT_MS} ms`));
    }
    linger();
  });
  // Once the last frame is out, the client has LINGER_MS to close its end.
  socket.once('finish', linger);

  pipeline(socket, new FrameDecoder({ partial: true }), cipher, new MemoryKeeper(), new FrameEncoder(), socket, (err) => {
    // A pending timer would hold the job's whole pipeline in memory until it fired.
    socket.setTimeout(0);
    clearTimeout(lingering);
    socket.destroy();
    const fault = cipher.fault;
    finish({
      pid: process.pid,
      received: read + socket.bytesRead,
      symbols: cipher.symbols,
      ms: Date.now() - started,
      outcome: cipher.completed ? 'ok' : fault ? 'fault' : 'broken',
      detail: fault ? fault.payload.subarray(1).toString() : err?.message,
    });
  });
}
