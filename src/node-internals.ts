// The only places the project reaches into Node's internals; test/node-internals.test.ts fails on a Node line where one stops working.
import * as net from 'node:net';

/**
 * What net.connect's `onread` option takes, with a function for `buffer`: each read goes
 * into the buffer `buffer()` last returned (called once at the start and after every
 * read), and `callback` gets the count; the socket emits no 'data'.
 */
export interface OnRead {
  buffer: () => Uint8Array;
  callback: (bytes: number, buffer: Uint8Array) => void;
}

interface OnreadKeys {
  buffer: symbol;
  generator: symbol;
  callback: symbol;
}
let onreadKeys: OnreadKeys | null | undefined;

/**
 * lib/net.js keeps a socket's `onread` buffer, buffer function and callback under private
 * symbols, found here on probe sockets made with known values; null when they are not there.
 */
function findOnreadKeys(): OnreadKeys | null {
  const buffer = Buffer.alloc(1);
  const generator = (): Buffer => buffer;
  const callback = (): boolean => true;
  const find = (probe: net.Socket, value: unknown): symbol | undefined => {
    const own = probe as unknown as Record<symbol, unknown>;
    const key = Object.getOwnPropertySymbols(probe).find((symbol) => own[symbol] === value);
    probe.destroy();
    return key;
  };
  const bufferKey = find(new net.Socket({ onread: { buffer, callback } } as net.SocketConstructorOpts), buffer);
  const generatorKey = find(new net.Socket({ onread: { buffer: generator, callback } } as unknown as net.SocketConstructorOpts), generator);
  const callbackKey = find(new net.Socket({ onread: { buffer, callback } } as net.SocketConstructorOpts), callback);
  return bufferKey && generatorKey && callbackKey ? { buffer: bufferKey, generator: generatorKey, callback: callbackKey } : null;
}

/**
 * What net.connect's `onread` option does, for a socket Node made itself (an accepted one,
 * or the TLS socket over it, neither of which takes the option): from the next read on,
 * the bytes go into our buffers instead of a new one per read pushed as 'data'. False, and
 * nothing changed, where this Node does not allow it. pause() and resume() stop and
 * restart reading, as they do for a socket connected with `onread`; a stray restart only
 * reads into the buffer `buffer()` last returned, which is why that one is always safe to
 * read into (src/streams/socket-source.ts).
 *
 * Measured (64 MiB job, worker CPU): 0.22-0.49 s with a new 64 KiB buffer per read and
 * the young collections that freed them, 0.08-0.13 s reading into a reused one.
 */
export function readIntoBuffer(socket: net.Socket, onread: OnRead): boolean {
  onreadKeys ??= findOnreadKeys();
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buf: Uint8Array) => void } })._handle;
  if (!onreadKeys || typeof handle?.useUserBuffer !== 'function') return false;
  const own = socket as unknown as Record<symbol, unknown>;
  const first = onread.buffer();
  own[onreadKeys.buffer] = first;
  own[onreadKeys.generator] = onread.buffer;
  own[onreadKeys.callback] = (bytes: number, buffer: Uint8Array): boolean => {
    onread.callback(bytes, buffer);
    return true;
  };
  handle.useUserBuffer(first);
  return true;
}

/**
 * A listening socket's handle (Node's internal TCP wrap), unwatched: what the server's
 * main process holds, passes on to the workers it forks and is sent back by one of them.
 */
export interface ListenHandle {
  /** listen(2), and libuv's watcher, which joins the event loop's poll at its next turn (0, or a negative errno; a bind's EADDRINUSE comes here). */
  listen(backlog: number): number;
  /** The descriptor, for a child's stdio: the child holds a copy from the instant it is forked. */
  readonly fd: number;
  close(): void;
}

interface NetInternals {
  _createServerHandle?: (address: string | null, port: number | null, addressType: number | null, fd?: number, flags?: number) => ListenHandle | number;
}

/**
 * lib/net.js's createServerHandle, which the cluster module uses for its shared handles:
 * binds a TCP handle to the address and port without listening; a negative errno when the
 * bind fails. Node has no public listen(2) that a process does not then accept on: the
 * main process calls the handle's listen(), forks its first workers with the descriptor,
 * and closes the handle in that same turn of its event loop, before the loop has polled
 * it once (test/server-listener.test.ts). The port then accepts some 1.3-1.4 times a bare
 * `node -e 0` after the server starts, where a worker's listen took 6-7 times
 * (bench/first-accept.ts, docs/PERFORMANCE.md).
 */
export function createServerHandle(address: string, port: number, family: number): ListenHandle | number {
  return serverHandleMaker()(address, port, family);
}

/** The same for a socket already bound and listening on descriptor `fd` (systemd's, or the one a worker inherits): adopted, not bound; unwatched until listened on. */
export function adoptServerHandle(fd: number): ListenHandle | number {
  return serverHandleMaker()(null, null, null, fd);
}

function serverHandleMaker(): NonNullable<NetInternals['_createServerHandle']> {
  const create = (net as unknown as NetInternals)._createServerHandle;
  if (typeof create !== 'function') throw new Error('this Node.js has no net._createServerHandle to share a listening socket with');
  return create;
}
