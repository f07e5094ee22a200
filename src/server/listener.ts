// The listening socket in the main process: made to listen before any worker exists, and never accepted on here (src/node-internals.ts; test/server-listener.test.ts checks it).
import { isIP } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { adoptServerHandle, createServerHandle, type ListenHandle } from '../node-internals.js';

export type { ListenHandle };

/** Connections the kernel queues while no worker accepts (Node's own default). */
const BACKLOG = 511;

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

/**
 * A handle bound to the host's address and the port, and listening: from here on the
 * kernel completes connections and queues them. An address is used as it is (no lookup,
 * no turn of the event loop); a name is looked up first. A ListenError (with an errno
 * name) when any of it fails.
 */
export async function listenOn(host: string, port: number): Promise<ListenHandle> {
  const family = isIP(host);
  return family !== 0 ? bindAndListen(host, family, port) : bindAndListen(...(await resolve(host)), port);
}

async function resolve(host: string): Promise<[string, number]> {
  // Loaded only for a name: a server given an address reaches its listen sooner without it.
  const { lookup } = require('node:dns/promises') as typeof import('node:dns/promises');
  try {
    const { address, family } = await lookup(host);
    return [address, family];
  } catch (err) {
    throw new ListenError((err as NodeJS.ErrnoException).code ?? 'ENOTFOUND');
  }
}

function bindAndListen(address: string, family: number, port: number): ListenHandle {
  const handle = createServerHandle(address, port, family);
  if (typeof handle === 'number') throw new ListenError(getSystemErrorName(handle));
  const err = handle.listen(BACKLOG);
  if (err !== 0) {
    handle.close();
    throw new ListenError(getSystemErrorName(err));
  }
  return handle;
}

/**
 * What the main process holds of the listening socket: a descriptor to hand every worker
 * it forks, never watched by its own event loop, so that it never accepts. A handle it
 * listened on itself is watched from the loop's next turn: it gives that one up in the
 * turn that forked the first workers (they hold copies), and keeps the first copy a
 * worker sends back instead. systemd's socket is adopted listening, unwatched: kept.
 */
export class MainSocket {
  private handle: ListenHandle | null;
  private closed = false;

  constructor(
    handle: ListenHandle,
    /** Listened on by this process (not adopted). */
    private watched: boolean,
  ) {
    this.handle = handle;
  }

  /** The descriptor a new worker gets; null while this process holds no copy. */
  get fd(): number | null {
    return this.handle?.fd ?? null;
  }

  /** Called in the same turn as the first forks, after them. */
  forked(): void {
    if (!this.watched) return;
    this.watched = false;
    this.handle!.close();
    this.handle = null;
  }

  /** A copy a worker sent back: kept when none is held, closed otherwise (and after close(): the port must close). */
  offer(copy: ListenHandle | undefined): void {
    if (!copy) return;
    if (this.handle || this.closed) copy.close();
    else this.handle = copy;
  }

  /** Shutdown: the port closes once the workers have closed theirs too. */
  close(): void {
    this.handle?.close();
    this.handle = null;
    this.watched = false;
    this.closed = true;
  }
}
