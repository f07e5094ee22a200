// The main process's pool of workers: forks each generation with the listening socket, replaces the workers that die, miss their start or stop answering the heartbeat, and moves to a new generation on reload.
import { fork, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { ListenHandle, MainSocket } from './listener.js';
import type { Log } from './log.js';
import { WORKER_SOCKET_FD, type ToMain, type ToWorker } from './messages.js';
import { StartThrottle } from './start-throttle.js';
import { WORKER_V8_FLAGS } from './worker-flags.js';

/** A reload whose new workers have failed to start this many times is given up. */
export const RELOAD_FAILED_STARTS = 3;

/** Starts in any second, per worker of the pool: a worker that cannot start is not restarted in a tight loop. */
export const STARTS_PER_WORKER_A_SECOND = 2;

export interface PoolOptions {
  size: number;
  socket: MainSocket;
  /** A worker that has not answered a heartbeat for this long is killed and replaced. */
  watchdogMs: number;
  /** A worker that has not reported ready this long after its fork is killed and replaced. */
  startMs: number;
  log: Log;
  /** A worker could not listen on the socket (errno name and reason). */
  cannotListen(code: string, message: string): void;
  /** Every worker has exited (`last`: how the last did), and none sent this process the copy of the socket later workers would need. */
  cannotServe(last: string): void;
  /** Whether a reload may begin now (the files new workers load do load); says why not itself. */
  mayReload(): boolean;
}

interface Worker {
  child: ChildProcess;
  generation: Generation;
  forkedAt: number;
  /** Listening, and said so. */
  ready: boolean;
  lastPong: number;
  /** Told to stop accepting and finish its jobs: not replaced when it exits. */
  retiring: boolean;
  /** Why this process killed it, for the log line. */
  killedFor: string | null;
}

/**
 * The workers forked for one start or reload. It never holds more than the pool's size,
 * counting the starts it is owed (waiting for the throttle, or for the socket's copy):
 * a start is owed to one generation, and dropped with it.
 */
class Generation {
  readonly workers = new Set<Worker>();
  owed = 0;
  failedStarts = 0;

  constructor(readonly size: number) {
    this.owed = size;
  }

  /** Owed the starts that bring it back to its size. */
  refill(): void {
    this.owed = Math.max(0, this.size - this.workers.size);
  }

  get whole(): boolean {
    return this.owed === 0 && this.workers.size === this.size && [...this.workers].every((w) => w.ready && !w.killedFor);
  }
}

export class WorkerPool {
  /** Every worker alive, of any generation. */
  private readonly workers = new Set<Worker>();
  /** The generation serving (at start: the first, coming up). */
  private current: Generation;
  /** A reload's generation while it comes up; it replaces `current` once whole. */
  private next: Generation | null = null;
  /** A SIGHUP came while a reload was under way: one more follows it. */
  private reloadAgain = false;
  private stopping = false;
  private readonly throttle: StartThrottle;
  private owedTimer: NodeJS.Timeout | null = null;
  private whenEmpty: (() => void) | null = null;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(private readonly options: PoolOptions) {
    this.current = new Generation(options.size);
    this.throttle = new StartThrottle(options.size * STARTS_PER_WORKER_A_SECOND);
    this.heartbeat = setInterval(() => this.beat(), Math.max(5, Math.floor(Math.min(options.watchdogMs, options.startMs) / 4)));
    this.heartbeat.unref();
  }

  /**
   * Forks the first generation, each worker holding the socket from the instant of its
   * fork; then, in the same turn, this process gives up a handle it listened on itself
   * (MainSocket), before its event loop could watch it.
   */
  start(): void {
    this.startOwed();
    this.options.socket.forked();
  }

  /**
   * SIGHUP: a fresh generation takes over once all its workers are ready; the older
   * workers then stop accepting, finish their jobs and exit. A reload asked for while
   * one is under way makes one more after it, however many are asked for.
   */
  reload(): void {
    if (this.stopping) return;
    if (this.next) {
      if (!this.reloadAgain) this.options.log('reload asked for while one is under way: one more will follow it');
      this.reloadAgain = true;
      return;
    }
    if (!this.options.mayReload()) return;
    this.next = new Generation(this.options.size);
    this.startOwed();
  }

  /** Every worker stops accepting and finishes its jobs; resolves once all have exited. */
  stop(): Promise<void> {
    this.stopping = true;
    if (this.owedTimer) clearTimeout(this.owedTimer);
    for (const worker of this.workers) this.retire(worker, 'stop');
    if (this.workers.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.whenEmpty = resolve));
  }

  /** SIGKILL to every worker, now. */
  kill(): void {
    this.stopping = true;
    for (const worker of this.workers) worker.child.kill('SIGKILL');
  }

  /** Makes the starts the generations are owed, serving one first, as far as the throttle and the socket allow. */
  private startOwed(): void {
    if (this.stopping || this.owedTimer) return;
    for (const generation of [this.current, this.next]) {
      while (generation && generation.owed > 0) {
        // No copy of the socket yet: the first worker ready brings one.
        const fd = this.options.socket.fd;
        if (fd === null) return;
        const wait = this.throttle.take(Date.now());
        if (wait > 0) {
          // Not unref'd: with no worker alive it is all that keeps this process from ending.
          this.owedTimer = setTimeout(() => {
            this.owedTimer = null;
            this.startOwed();
          }, wait);
          return;
        }
        generation.owed--;
        this.spawn(generation, fd);
      }
    }
  }

  private spawn(generation: Generation, socketFd: number): void {
    const stdio: StdioOptions = ['ignore', 'inherit', 'inherit', 'ipc'];
    stdio[WORKER_SOCKET_FD] = socketFd;
    const child = fork(process.argv[1], process.argv.slice(2), {
      execArgv: [...process.execArgv, ...WORKER_V8_FLAGS],
      // UV_TCP_SINGLE_ACCEPT: libuv accepts one connection a turn instead of all that are
      // pending, so that a burst spreads over the workers instead of filling the first awake.
      env: { ...process.env, OTP_WORKER: '1', UV_TCP_SINGLE_ACCEPT: '1' },
      stdio,
    });
    const now = Date.now();
    const worker: Worker = { child, generation, forkedAt: now, ready: false, lastPong: now, retiring: false, killedFor: null };
    this.workers.add(worker);
    generation.workers.add(worker);
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
      this.startOwed();
      if (worker.generation === this.next && this.next.whole) this.takeOver(this.next);
    } else if (message.kind === 'cannot-listen') {
      this.options.cannotListen(message.code, message.message);
    }
  }

  /** The reload's generation is whole: the one it replaces retires. */
  private takeOver(next: Generation): void {
    for (const worker of this.current.workers) this.retire(worker, 'retire');
    this.current.owed = 0;
    this.current = next;
    this.settled();
  }

  /** A reload has ended, taken over or given up: the one asked for meanwhile begins. */
  private settled(): void {
    this.next = null;
    if (!this.reloadAgain) return;
    this.reloadAgain = false;
    this.reload();
  }

  private exited(worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    this.workers.delete(worker);
    const { generation } = worker;
    generation.workers.delete(worker);
    if (this.stopping) {
      if (this.workers.size === 0) this.whenEmpty?.();
      return;
    }
    const what = `worker ${worker.child.pid} ${worker.killedFor ?? (signal ? `was killed by ${signal}` : `exited with code ${code}`)}`;
    if (this.options.socket.fd === null && this.workers.size === 0) return this.options.cannotServe(what);
    if (worker.retiring) return;
    if (generation === this.next) {
      if (++generation.failedStarts >= RELOAD_FAILED_STARTS) return this.giveUp(generation, what);
    } else if (this.next) {
      // The generation a reload is replacing is not replaced: the new one has its number already.
      return this.options.log(`${what}; the reload's new workers take its place`);
    }
    this.options.log(`${what}; starting another`);
    generation.owed++;
    this.startOwed();
  }

  /** A reload whose new workers keep failing ends: they retire (a wedged one meets its start deadline), the old generation is made whole again and keeps serving. */
  private giveUp(next: Generation, last: string): void {
    this.options.log(`reload given up: its new workers failed to start ${next.failedStarts} times (the last: ${last}); the old workers keep serving`);
    next.owed = 0;
    for (const worker of next.workers) this.retire(worker, 'retire');
    this.current.refill();
    this.settled();
    this.startOwed();
  }

  /** stop: a shutdown, no new job starts; retire: a reload, the connections it accepted are served. */
  private retire(worker: Worker, how: 'stop' | 'retire'): void {
    worker.retiring = true;
    this.send(worker, { kind: how });
  }

  /** Pings every ready worker; kills one that has not answered within the watchdog time (stopped, or stuck in a loop), or not started within the start time. */
  private beat(): void {
    const now = Date.now();
    const { watchdogMs, startMs } = this.options;
    for (const worker of this.workers) {
      if (worker.killedFor) continue;
      if (!worker.ready && now - worker.forkedAt > startMs) {
        this.killFor(worker, `did not start within ${startMs} ms and was killed`);
      } else if (worker.ready && now - worker.lastPong > watchdogMs) {
        this.killFor(worker, `did not answer for ${watchdogMs} ms and was killed`);
      } else if (worker.ready) {
        this.send(worker, { kind: 'ping' });
      }
    }
  }

  private killFor(worker: Worker, why: string): void {
    worker.killedFor = why;
    worker.child.kill('SIGKILL');
  }

  private send(worker: Worker, message: ToWorker): void {
    if (!worker.child.connected) return;
    // An error here is the worker going away: its exit is handled on its own.
    worker.child.send(message, undefined, () => {});
  }
}
