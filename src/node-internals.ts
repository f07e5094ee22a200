// The only places the project reaches into Node's internals; test/node-internals.test.ts fails on a Node line where one stops working.
import * as net from 'node:net';
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
