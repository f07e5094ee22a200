// A server's main process: binds the listening socket, keeps the pool of workers that accept on it, and takes the signals; it never touches a client connection.
import { reason } from '../cli.js';
import { hostPort } from '../host-port.js';
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

export async function runSupervisor(config: SupervisorConfig): Promise<void> {
  const log = stderrLog(config.program);
  const where = hostPort(config.host, config.port);
  let pool: WorkerPool | null = null;
  const cannotListen = (code: string, message?: string): never => {
    log(`error: cannot listen on ${where}: ${reason(Object.assign(new Error(message ?? code), { code }))}`);
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

