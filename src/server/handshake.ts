// Reads the opening of a connection (HELLO, then the job's first byte) in the server's main process.
import type { Socket } from 'node:net';
import { freeze } from '../node-internals.js';
import { ErrorCode, FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD } from '../protocol.js';

export type Hello =
  | { ok: true; version: number; role: number; /** bytes that came after the HELLO frame */ rest: Buffer }
  | { ok: false; reason: string };

/** The HELLO at the start of `bytes`: undefined while it is incomplete. */
export function parseHello(bytes: Buffer): Hello | undefined {
  if (bytes.length >= 1 && bytes[0] !== FrameType.HELLO) {
    return { ok: false, reason: `the first frame is of type ${bytes[0]}, not HELLO` };
  }
  if (bytes.length < HEADER_SIZE) return undefined;
  const length = bytes.readUInt32BE(1);
  if (length > MAX_CONTROL_PAYLOAD) return { ok: false, reason: `HELLO frame of ${length} bytes` };
  if (bytes.length < HEADER_SIZE + length) return undefined;
  if (length < 2) return { ok: false, reason: `HELLO frame of ${length} bytes` };
  return {
    ok: true,
    version: bytes[HEADER_SIZE],
    role: bytes[HEADER_SIZE + 1],
    rest: bytes.subarray(HEADER_SIZE + length),
  };
}

export interface Opening {
  /** Bytes after the HELLO frame: the start of the job. */
  rest: Buffer;
}

export interface Refusal {
  code: ErrorCode;
  reason: string;
  /** Nothing at all came: a port probe, not a fault. */
  empty?: boolean;
  /** What the server's log says, where it says more than the client is told. */
  logLine?: string;
}

/**
 * Reads the opening of a connection in the main process: its HELLO within `helloMs`,
 * which `judge` accepts or refuses, then the first byte of the job within `jobMs`, so that
 * a client that says HELLO and nothing more costs a descriptor here and never a worker.
 * An accepted socket is left frozen: its handle reads nothing more in this process, so
 * that no byte is read here and lost when the socket moves to a worker.
 */
export function readOpening(
  socket: Socket,
  helloMs: number,
  jobMs: number,
  judge: (version: number, role: number) => Refusal | null,
): Promise<Opening | Refusal> {
  return new Promise((resolve) => {
    let bytes: Buffer = Buffer.alloc(0);
    let helloSeen = false;
    const finish = (result: Opening | Refusal): void => {
      clearTimeout(timer);
      socket.off('data', onData).off('end', onEnd).off('error', onEnd).off('close', onEnd);
      if ('rest' in result) freeze(socket);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
      const hello = parseHello(bytes);
      if (!hello) return;
      if (!hello.ok) return finish({ code: ErrorCode.PROTOCOL, reason: hello.reason });
      if (!helloSeen) {
        helloSeen = true;
        const refusal = judge(hello.version, hello.role);
        if (refusal) return finish(refusal);
      }
      if (hello.rest.length > 0) return finish({ rest: hello.rest });
      clearTimeout(timer);
      timer = setTimeout(() => finish({ code: ErrorCode.TIMEOUT, reason: `no job within ${jobMs} ms of the HELLO` }), jobMs);
    };
    const onEnd = (): void =>
      finish({
        code: ErrorCode.PROTOCOL,
        reason: helloSeen ? 'the connection closed after its HELLO' : 'the connection closed before its HELLO',
        empty: bytes.length === 0,
      });
    let timer = setTimeout(() => finish({ code: ErrorCode.TIMEOUT, reason: `no HELLO within ${helloMs} ms` }), helloMs);
    socket.on('data', onData).on('end', onEnd).on('error', onEnd).on('close', onEnd);
    socket.resume();
  });
}
