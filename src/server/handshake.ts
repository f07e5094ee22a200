// Reads a connection's HELLO frame in the server's main process, before any worker is spent on it.
import type { Socket } from 'node:net';
import { FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD } from '../protocol.js';

export type Hello =
  | { ok: true; version: number; role: number; /** bytes that came after the HELLO frame */ rest: Buffer }
  | {
      ok: false;
      reason: string;
      /** nothing at all came: a port probe, not a fault */
      empty?: boolean;
      timedOut?: boolean;
    };

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

/**
 * Reads from a paused socket until its HELLO is complete. A socket with a good HELLO is
 * left frozen: its handle reads nothing more in this process, so that no byte is read
 * here and lost when the socket moves to a worker.
 */
export function readHello(socket: Socket, timeoutMs: number): Promise<Hello> {
  return new Promise((resolve) => {
    let bytes: Buffer = Buffer.alloc(0);
    const finish = (hello: Hello): void => {
      clearTimeout(timer);
      socket.off('data', onData).off('end', onEnd).off('error', onEnd).off('close', onEnd);
      if (hello.ok) freeze(socket);
      resolve(hello);
    };
    const onData = (chunk: Buffer): void => {
      bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
      const hello = parseHello(bytes);
      if (hello) finish(hello);
    };
    const onEnd = (): void =>
      finish({ ok: false, reason: 'the connection closed before its HELLO', empty: bytes.length === 0 });
    const timer = setTimeout(
      () => finish({ ok: false, reason: `no HELLO within ${timeoutMs} ms`, timedOut: true }),
      timeoutMs,
    );
    socket.on('data', onData).on('end', onEnd).on('error', onEnd).on('close', onEnd);
    socket.resume();
  });
}

/**
 * Node's pause() stops the handle only for sockets made with an `onread` buffer, and the
 * stream machinery would start it again on the next tick to fill its buffer: the handle
 * is stopped here, and the socket's _read made to leave it stopped.
 */
function freeze(socket: Socket): void {
  socket.pause();
  socket._read = () => {};
  const handle = (socket as unknown as { _handle?: { readStop(): number; reading: boolean } })._handle;
  if (handle) {
    handle.readStop();
    handle.reading = false;
  }
}

/** Lets a frozen socket read again, to drain it before closing. */
export function thaw(socket: Socket): void {
  Reflect.deleteProperty(socket, '_read');
  socket.resume();
}
