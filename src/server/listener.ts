// The listening socket made in the main process without accepting on it: Node's own cluster trick, in one place (test/server-listener.test.ts checks it).
import { lookup } from 'node:dns/promises';
import * as net from 'node:net';
import { getSystemErrorName } from 'node:util';

/** A bound socket's handle (Node's internal TCP wrap), to send to workers with child.send(message, handle). */
export interface ListenHandle {
  close(): void;
  getsockname(out: { port?: number }): number;
}

interface NetInternals {
  /**
   * lib/net.js's createServerHandle, which the cluster module uses for its shared
   * handles: binds a TCP handle to the address and port (or adopts descriptor `fd`)
   * but does not listen, so that the process that made it never accepts; it returns a
   * negative errno when the bind fails.
   */
  _createServerHandle?: (address: string | null, port: number | null, addressType: number | null, fd?: number, flags?: number) => ListenHandle | number;
}

export class ListenError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

function createServerHandle(): NonNullable<NetInternals['_createServerHandle']> {
  const create = (net as unknown as NetInternals)._createServerHandle;
  if (typeof create !== 'function') throw new Error('this Node.js has no net._createServerHandle to share a listening socket with');
  return create;
}

/** A handle for the listening socket on descriptor `fd` (systemd's, already bound and listening); a ListenError when it is none. */
export function adoptListener(fd: number): ListenHandle {
  const handle = createServerHandle()(null, null, null, fd);
  if (typeof handle === 'number') throw new ListenError(getSystemErrorName(handle));
  return handle;
}

/** The host's address, then a handle bound to it and the port; a ListenError (with an errno name) when that fails. */
export async function bindListener(host: string, port: number): Promise<ListenHandle> {
  const create = createServerHandle();
  let address: { address: string; family: number };
  try {
    address = await lookup(host);
  } catch (err) {
    throw new ListenError((err as NodeJS.ErrnoException).code ?? 'ENOTFOUND');
  }
  const handle = create(address.address, port, address.family);
  if (typeof handle === 'number') throw new ListenError(getSystemErrorName(handle));
  // libuv keeps a bind's EADDRINUSE for the listen that follows, and the handle a worker
  // gets does not carry it: there, listen() would bind the socket to a random port. An
  // unbound socket is told by its port.
  const bound: { port?: number } = {};
  if (handle.getsockname(bound) !== 0 || (port !== 0 && bound.port !== port)) {
    handle.close();
    throw new ListenError('EADDRINUSE');
  }
  return handle;
}
