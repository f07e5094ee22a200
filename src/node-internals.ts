// The only places the project reaches into Node's internals; test/node-internals.test.ts fails on a Node line where one stops working.
import * as net from 'node:net';
import { Duplex } from 'node:stream';
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

/** What `onread` calls with the number of bytes read into its buffer; a socket read this way emits no 'data'. */
export type ReadCallback = (bytes: number) => unknown;

interface OnreadKeys {
  buffer: symbol;
  callback: symbol;
}
let onreadKeys: OnreadKeys | null | undefined;

/**
 * lib/net.js keeps a socket's `onread` buffer and callback under private symbols, found
 * here on a probe socket made with a known pair; null when they are not there.
 */
function findOnreadKeys(): OnreadKeys | null {
  const buffer = Buffer.alloc(1);
  const callback = (): boolean => true;
  const probe = new net.Socket({ onread: { buffer, callback } } as net.SocketConstructorOpts);
  const own = probe as unknown as Record<symbol, unknown>;
  const symbols = Object.getOwnPropertySymbols(probe);
  const bufferKey = symbols.find((key) => own[key] === buffer);
  const callbackKey = symbols.find((key) => own[key] === callback);
  probe.destroy();
  return bufferKey && callbackKey ? { buffer: bufferKey, callback: callbackKey } : null;
}

/**
 * What net.connect's `onread` option does, for a socket Node made itself (an accepted
 * one, which takes no such option): from the next read on, the bytes go into `buffer`,
 * the same every time, and `callback` gets their count, instead of a new buffer per read
 * pushed as 'data'. False, and nothing changed, where this Node does not allow it.
 * Pause and resume the socket to stop and restart reading; never return false from the
 * callback (that stops reading in a way resume() does not undo).
 */
export function readIntoBuffer(socket: net.Socket, buffer: Buffer, callback: ReadCallback): boolean {
  onreadKeys ??= findOnreadKeys();
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buf: Uint8Array) => void } })._handle;
  if (!onreadKeys || typeof handle?.useUserBuffer !== 'function') return false;
  const own = socket as unknown as Record<symbol, unknown>;
  own[onreadKeys.buffer] = buffer;
  own[onreadKeys.callback] = (bytes: number): boolean => {
    callback(bytes);
    return true;
  };
  handle.useUserBuffer(buffer);
  // net.Socket's read() and _read() restart the handle whenever the Readable asks for data
  // (maybeReadMore_ after a push, resume_, flow), paused or not: here only resume() may.
  const methods = socket as unknown as { read(n?: number): unknown; _read(n: number): void };
  methods.read = function (this: net.Socket, n?: number) {
    return Duplex.prototype.read.call(this, n);
  };
  methods._read = () => {};
  return true;
}

/** A bound socket's handle (Node's internal TCP wrap), to send to workers with child.send(message, handle). */
export interface ListenHandle {
  close(): void;
  getsockname(out: { port?: number }): number;
}

interface NetInternals {
  _createServerHandle?: (address: string | null, port: number | null, addressType: number | null, fd?: number, flags?: number) => ListenHandle | number;
}

/**
 * lib/net.js's createServerHandle, which the cluster module uses for its shared handles:
 * binds a TCP handle to the address and port but does not listen, so that the process
 * that made it never accepts; a negative errno when the bind fails.
 */
export function createServerHandle(address: string, port: number, family: number): ListenHandle | number {
  return serverHandleMaker()(address, port, family);
}

/** The same for a socket already bound and listening on descriptor `fd` (systemd socket activation): adopted, not bound. */
export function adoptServerHandle(fd: number): ListenHandle | number {
  return serverHandleMaker()(null, null, null, fd);
}

function serverHandleMaker(): NonNullable<NetInternals['_createServerHandle']> {
  const create = (net as unknown as NetInternals)._createServerHandle;
  if (typeof create !== 'function') throw new Error('this Node.js has no net._createServerHandle to share a listening socket with');
  return create;
}
