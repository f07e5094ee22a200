// The only places the project reaches into Node's internals; test/node-internals.test.ts fails on a Node line where one stops working.
import type { Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options: { type: 'minor'; execution: 'sync' }) => void;
let gc: Gc | undefined;

/**
 * A young-generation collection on demand, for the few places that know better than V8's
 * heuristics: --expose-gc set at run time, and the `gc` it puts in a fresh context.
 */
export function collectYoungGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  }
  gc({ type: 'minor', execution: 'sync' });
}

/**
 * Stops a socket reading for good, until `thaw`. Node's pause() stops the handle only for
 * sockets made with an `onread` buffer, and the stream machinery would start it again on
 * the next tick to fill its buffer: the handle is stopped here (`_handle.readStop()`), and
 * the socket's _read made to leave it stopped.
 */
export function freeze(socket: Socket): void {
  socket.pause();
  socket._read = () => {};
  const handle = (socket as unknown as { _handle?: { readStop(): number; reading: boolean } })._handle;
  if (handle) {
    handle.readStop();
    handle.reading = false;
  }
}

/** Lets a socket read again, frozen or not. */
export function thaw(socket: Socket): void {
  if (Object.hasOwn(socket, '_read')) {
    Reflect.deleteProperty(socket, '_read');
    // The no-op _read left the stream believing a read is under way
    // (`_readableState.reading`), which would keep resume() from ever starting the handle.
    (socket as unknown as { _readableState: { reading: boolean } })._readableState.reading = false;
  }
  socket.resume();
}
