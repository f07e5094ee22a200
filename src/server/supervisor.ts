// A server's main process: binds the listening socket (or adopts systemd's), keeps the pool of workers that accept on it, and takes the signals; it never touches a client connection.
import { reason } from '../cli/errors.js';
import { hostPort } from '../format/host-port.js';
import type { Timeouts } from '../protocol/timeouts.js';
import { adoptListener, bindListener, ListenError, type ListenHandle } from './listener.js';
import { stderrLog } from './log.js';
import { WorkerPool } from './pool.js';
import { handleStopSignals } from './signals.js';

export interface SupervisorConfig {
  program: string;
  /** Where to listen: an address and port, or the descriptor of a socket systemd passed. */
  listen: { host: string; port: number } | { fd: number };
  workers: number;
  timeouts: Timeouts;
  /** Loads what new workers will load (the TLS files) and throws a UserError if it cannot: a reload is refused then. */
  recheck(): void;
}

export async function runSupervisor(config: SupervisorConfig): Promise<void> {
  const log = stderrLog(config.program);
  const { listen } = config;
  const where = 'fd' in listen ? `the socket systemd passed (descriptor ${listen.fd})` : hostPort(listen.host, listen.port);
  let pool: WorkerPool | null = null;
  const cannotListen = (code: string, message?: string): never => {
    log(`error: cannot listen on ${where}: ${reason(Object.assign(new Error(message ?? code), { code }))}`);
    pool?.kill();
    process.exit(1);
  };

  let handle: ListenHandle;
  try {
    handle = 'fd' in listen ? adoptListener(listen.fd) : await bindListener(listen.host, listen.port);
  } catch (err) {
    if (err instanceof ListenError) return cannotListen(err.code);
    return cannotListen('', reason(err));
  }
  pool = new WorkerPool({ size: config.workers, handle, watchdogMs: config.timeouts.watchdogMs, log, cannotListen });
  pool.start();
  handleStopSignals(() => drain(pool!, handle, config.timeouts.shutdownGraceMs), () => pool!.kill(), () => reload(pool!, config, log));
}

/**
 * SIGHUP: a new generation of workers, forked from the program as it is now on disk and
 * loading the TLS files afresh, takes over the listening socket, which never closes; the
 * old workers finish their jobs and exit. Files that would not load refuse the reload.
 */
function reload(pool: WorkerPool, config: SupervisorConfig, log: (line: string) => void): void {
  try {
    config.recheck();
  } catch (err) {
    return log(`reload refused, the workers keep running: ${(err as Error).message}`);
  }
  log(`reloading: ${config.workers} new workers from ${process.argv[1]}; the old ones finish their jobs and exit`);
  pool.renew();
}

/** Stops accepting (the workers close their copies of the socket, we ours) and waits for the jobs, for the grace time at most. */
function drain(pool: WorkerPool, handle: ListenHandle, graceMs: number): Promise<void> {
  handle.close();
  const cut = setTimeout(() => pool.kill(), graceMs);
  return pool.stop().finally(() => clearTimeout(cut));
}

