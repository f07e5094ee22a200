// The main process's pool of workers: forks them with the listening socket, replaces those that die or stop answering the heartbeat, retires a generation.
import { fork, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { ListenHandle, MainSocket } from './listener.js';
import type { Log } from './log.js';
import { WORKER_SOCKET_FD, type ToMain, type ToWorker } from './messages.js';
import { WORKER_V8_FLAGS } from './worker-flags.js';

export interface PoolOptions {
  size: number;
  socket: MainSocket;
  /** A worker that has not answered a heartbeat for this long is killed and replaced. */
  watchdogMs: number;
  log: Log;
  /** A worker could not listen on the socket (errno name and reason). */
  cannotListen(code: string, message: string): void;
  /** Every worker has exited (`last`: how the last did), and none sent this process the copy of the socket later workers would need. */
  cannotServe(last: string): void;
}

interface Worker {
  child: ChildProcess;
  ready: boolean;
  lastPong: number;
  /** Told to stop accepting and finish its jobs: not replaced when it exits. */
  retiring: boolean;
  /** Killed by the watchdog. */
  hung: boolean;
  /** Which renew() it was forked by. */
  generation: number;
}

export class WorkerPool {
  private readonly workers = new Set<Worker>();
  private stopping = false;
  private recentStarts: number[] = [];
  private whenEmpty: (() => void) | null = null;
  private generation = 0;
  /** Starts waiting for a copy of the socket, which the first worker ready brings. */
  private starved = 0;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(private readonly options: PoolOptions) {
    this.heartbeat = setInterval(() => this.beat(), Math.max(5, Math.floor(options.watchdogMs / 4)));
    this.heartbeat.unref();
  }

  /**
   * Forks the first generation, each worker holding the socket from the instant of its
   * fork; then, in the same turn, this process gives up a handle it listened on itself
   * (MainSocket), before its event loop could watch it.
   */
  start(): void {
    this.forkGeneration();
    this.options.socket.forked();
  }

  /**
   * A fresh generation takes over: once all its workers have started (a program on disk
   * that cannot start leaves the old ones serving), the older workers stop accepting,
   * finish their jobs and exit.
   */
  renew(): void {
    this.generation++;
    this.forkGeneration();
  }

  private forkGeneration(): void {
    for (let i = 0; i < this.options.size; i++) this.spawn();
  }

  /** Every worker stops accepting and finishes its jobs; resolves once all have exited. */
  stop(): Promise<void> {
    this.stopping = true;
    for (const worker of this.workers) this.retire(worker);
    if (this.workers.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.whenEmpty = resolve));
  }

  /** SIGKILL to every worker, now. */
  kill(): void {
    this.stopping = true;
    for (const worker of this.workers) worker.child.kill('SIGKILL');
  }

  private spawn(): void {
    if (this.stopping) return;
    const socketFd = this.options.socket.fd;
    if (socketFd === null) {
      this.starved++;
      return;
    }
    // A worker that cannot start would otherwise be replaced in a tight loop.
    const now = Date.now();
    this.recentStarts = this.recentStarts.filter((t) => now - t < 1000);
    if (this.recentStarts.length >= this.options.size * 2) {
      // Not unref'd: with no worker alive it is all that keeps this process from ending.
      setTimeout(() => this.spawn(), 1000);
      return;
    }
    this.recentStarts.push(now);
    const stdio: StdioOptions = ['ignore', 'inherit', 'inherit', 'ipc'];
    stdio[WORKER_SOCKET_FD] = socketFd;
    const child = fork(process.argv[1], process.argv.slice(2), {
      execArgv: [...process.execArgv, ...WORKER_V8_FLAGS],
      // UV_TCP_SINGLE_ACCEPT: libuv accepts one connection a turn instead of all that are
      // pending, so that a burst spreads over the workers instead of filling the first awake.
      env: { ...process.env, OTP_WORKER: '1', UV_TCP_SINGLE_ACCEPT: '1' },
      stdio,
    });
    const worker: Worker = { child, ready: false, lastPong: now, retiring: false, hung: false, generation: this.generation };
    this.workers.add(worker);
    child.on('message', (message: ToMain, handle?: ListenHandle) => this.heard(worker, message, handle));
    child.on('error', (err) => this.options.log(`worker ${child.pid}: ${err.message}`));
    // 'close', not 'exit': after the channel has delivered all the worker sent (its copy of the socket).
    child.on('close', (code, signal) => this.exited(worker, code, signal));
  }

  private heard(worker: Worker, message: ToMain, handle: ListenHandle | undefined): void {
    worker.lastPong = Date.now();
    if (message.kind === 'ready') {
      worker.ready = true;
      this.options.socket.offer(handle);
      for (; this.starved > 0 && this.options.socket.fd !== null; this.starved--) this.spawn();
      this.retireOlderGenerations();
    } else if (message.kind === 'cannot-listen') {
      this.options.cannotListen(message.code, message.message);
    }
  }

  private exited(worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    this.workers.delete(worker);
    if (this.stopping || worker.retiring) {
      if (this.stopping && this.workers.size === 0) this.whenEmpty?.();
      return;
    }
    const pid = worker.child.pid;
    const how =
      worker.hung ? `did not answer for ${this.options.watchdogMs} ms and was killed`
      : signal ? `was killed by ${signal}`
      : `exited with code ${code}`;
    if (this.options.socket.fd === null && this.workers.size === 0) return this.options.cannotServe(`worker ${pid} ${how}`);
    // A worker of a generation a reload is replacing is not replaced: the new generation
    // already has its full number (a replacement would join it, one too many for good).
    if (worker.generation !== this.generation) return this.options.log(`worker ${pid} ${how}; the reload's new workers take its place`);
    this.options.log(`worker ${pid} ${how}; starting another`);
    this.spawn();
  }

  /** When every worker of the newest generation is ready, the others retire. */
  private retireOlderGenerations(): void {
    const newest = [...this.workers].filter((w) => w.generation === this.generation);
    if (newest.length < this.options.size || newest.some((w) => !w.ready)) return;
    for (const worker of this.workers) if (worker.generation !== this.generation && !worker.retiring) this.retire(worker, 'retire');
  }

  /** stop: a shutdown, no new job starts; retire: a reload, the connections it accepted are served. */
  private retire(worker: Worker, how: 'stop' | 'retire' = 'stop'): void {
    worker.retiring = true;
    this.send(worker, { kind: how });
  }

  /** Pings every ready worker; kills one that has not answered within the watchdog time (stopped, or stuck in a loop). */
  private beat(): void {
    const now = Date.now();
    for (const worker of this.workers) {
      if (!worker.ready || worker.hung) continue;
      if (now - worker.lastPong > this.options.watchdogMs) {
        worker.hung = true;
        worker.child.kill('SIGKILL');
      } else {
        this.send(worker, { kind: 'ping' });
      }
    }
  }

  private send(worker: Worker, message: ToWorker): void {
    if (!worker.child.connected) return;
    // An error here is the worker going away: its exit is handled on its own.
    worker.child.send(message, undefined, () => {});
  }
}
