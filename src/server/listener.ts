// The listening socket made in the main process without accepting on it, by Node's own cluster trick (src/node-internals.ts; test/server-listener.test.ts checks it).
import { lookup } from 'node:dns/promises';
import { getSystemErrorName } from 'node:util';
import { adoptServerHandle, createServerHandle, type ListenHandle } from '../node-internals.js';

export type { ListenHandle };

export class ListenError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

/** A handle for the listening socket on descriptor `fd` (systemd's, already bound and listening); a ListenError when it is none. */
export function adoptListener(fd: number): ListenHandle {
  const handle = adoptServerHandle(fd);
  if (typeof handle === 'number') throw new ListenError(getSystemErrorName(handle));
  return handle;
}

/** The host's address, then a handle bound to it and the port; a ListenError (with an errno name) when that fails. */
export async function bindListener(host: string, port: number): Promise<ListenHandle> {
  let address: { address: string; family: number };
  try {
    address = await lookup(host);
  } catch (err) {
    throw new ListenError((err as NodeJS.ErrnoException).code ?? 'ENOTFOUND');
  }
  const handle = createServerHandle(address.address, port, address.family);
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
