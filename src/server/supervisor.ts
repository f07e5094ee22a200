// A server's main process: binds the listening socket, keeps the pool of workers that accept on it, and takes the signals; it never touches a client connection.
import { reason } from '../cli.js';
import type { Timeouts } from '../protocol.js';
import { bindListener, ListenError, type ListenHandle } from './listener.js';
import { stderrLog } from './log.js';
import { WorkerPool } from './pool.js';
import { handleStopSignals } from './signals.js';

export interface SupervisorConfig {
  program: string;
  host: string;
  port: number;
  workers: number;
  timeouts: Timeouts;
}

const WHY: Record<string, string> = {
  EADDRINUSE: 'the port is in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'no such local address',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name cannot be resolved now',
};

export async function runSupervisor(config: SupervisorConfig): Promise<void> {
  const log = stderrLog(config.program);
  const where = `${config.host}:${config.port}`;
  let pool: WorkerPool | null = null;
  const cannotListen = (code: string, message?: string): never => {
    log(`error: cannot listen on ${where}: ${WHY[code] ?? message ?? code}`);
    pool?.kill();
    process.exit(1);
  };

  let handle: ListenHandle;
  try {
    handle = await bindListener(config.host, config.port);
  } catch (err) {
    if (err instanceof ListenError) return cannotListen(err.code);
    return cannotListen('', reason(err));
  }
  pool = new WorkerPool({ size: config.workers, handle, watchdogMs: config.timeouts.watchdogMs, log, cannotListen });
  pool.start();
  handleStopSignals(() => drain(pool!, handle, config.timeouts.shutdownGraceMs), () => pool!.kill());
}

/** Stops accepting (the workers close their copies of the socket, we ours) and waits for the jobs, for the grace time at most. */
function drain(pool: WorkerPool, handle: ListenHandle, graceMs: number): Promise<void> {
  handle.close();
  const cut = setTimeout(() => pool.kill(), graceMs);
  return pool.stop().finally(() => clearTimeout(cut));
}

