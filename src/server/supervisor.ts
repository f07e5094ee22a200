// A server's main process: listens on the socket (or adopts systemd's) before anything else, keeps the pool of workers that accept on it, and takes the signals; it never touches a client connection.
import { fail, reason } from '../cli/errors.js';
import { hostPort } from '../format/host-port.js';
import type { Timeouts } from '../protocol/timeouts.js';
import { adoptListener, ListenError, listenOn, MainSocket, type ListenHandle } from './listener.js';
import { stderrLog, type Log } from './log.js';
import { WorkerPool } from './pool.js';
import { handleStopSignals } from './signals.js';

export interface SupervisorConfig {
  program: string;
  /** Where to listen: an address and port, or the descriptor of a socket systemd passed. */
  listen: { host: string; port: number } | { fd: number };
  workers: number;
  timeouts: Timeouts;
  /** Loads what new workers will load (the TLS files) and throws a UserError if it cannot: the server does not start then, a reload is refused. */
  recheck(): void;
}

export async function runSupervisor(config: SupervisorConfig): Promise<void> {
  const { listen } = config;
  const where = (): string => ('fd' in listen ? `the socket systemd passed (descriptor ${listen.fd})` : hostPort(listen.host, listen.port));
  let pool: WorkerPool | null = null;
  const cannotListen = (code: string, message?: string): never => {
    stderrLog(config.program)(`error: cannot listen on ${where()}: ${reason(Object.assign(new Error(message ?? code), { code }))}`);
    pool?.kill();
    process.exit(1);
  };

  // The port accepts from the listen on: a client that comes before the workers waits in
  // the kernel's backlog. So it comes first, and nothing that can wait comes before it.
  let handle: ListenHandle;
  try {
    handle = 'fd' in listen ? adoptListener(listen.fd) : await listenOn(listen.host, listen.port);
  } catch (err) {
    if (err instanceof ListenError) return cannotListen(err.code);
    return cannotListen('', reason(err));
  }
  // From the listen to the first forks nothing may wait: a handle listened on here is
  // watched from the event loop's next turn (MainSocket).
  try {
    config.recheck();
  } catch (err) {
    fail(config.program, err);
  }
  const log = stderrLog(config.program);
  const socket = new MainSocket(handle, !('fd' in listen));
  pool = new WorkerPool({
    size: config.workers,
    socket,
    watchdogMs: config.timeouts.watchdogMs,
    startMs: config.timeouts.startMs,
    log,
    cannotListen,
    cannotServe: (last) => {
      log(`error: every worker exited before one was listening (the last: ${last}); nothing can accept on ${where()} any more`);
      process.exit(1);
    },
    mayReload: () => mayReload(config, log),
  });
  pool.start();
  handleStopSignals(() => drain(pool!, socket, config.timeouts.shutdownGraceMs), () => pool!.kill(), () => pool!.reload());
}

/**
 * SIGHUP: a new generation of workers, forked from the program as it is now on disk and
 * loading the TLS files afresh, takes over the listening socket, which never closes; the
 * old workers finish their jobs and exit. Files that would not load refuse the reload.
 */
function mayReload(config: SupervisorConfig, log: Log): boolean {
  try {
    config.recheck();
  } catch (err) {
    log(`reload refused, the workers keep running: ${(err as Error).message}`);
    return false;
  }
  log(`reloading: ${config.workers} new workers from ${process.argv[1]}; the old ones finish their jobs and exit`);
  return true;
}

/** Stops accepting (the workers close their copies of the socket, we ours) and waits for the jobs, for the grace time at most. */
function drain(pool: WorkerPool, socket: MainSocket, graceMs: number): Promise<void> {
  socket.close();
  const cut = setTimeout(() => pool.kill(), graceMs);
  return pool.stop().finally(() => clearTimeout(cut));
}
