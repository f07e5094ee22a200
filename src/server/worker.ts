// A server's worker process: accepts connections on the listening socket it inherits from the main process, and serves many at once within its caps.
import type { SendHandle } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { cipherTable, type Direction } from '../cipher/alphabet.js';
import { reason } from '../cli/errors.js';
import { LINGER_MS, type Timeouts } from '../protocol/timeouts.js';
import { Role } from '../protocol/frames.js';
import { Connection, type Host } from './connection.js';
import { effectiveCaps, openFileLimit, pickVictim, type Caps } from './limits.js';
import { BurstLog, formatPeer, stderrLog, type Log } from './log.js';
import { adoptListener, type ListenHandle } from './listener.js';
import { WORKER_SOCKET_FD, type ToMain, type ToWorker } from './messages.js';
import { Preamble, type PreambleOptions } from './preamble.js';
import type { ServerTls } from '../tls/options.js';

export interface WorkerConfig {
  program: string;
  direction: Direction;
  caps: Caps;
  timeouts: Timeouts;
  verbose: boolean;
  /** What comes before the HELLO: a PROXY protocol header, TLS. */
  preamble: { proxyProtocol: boolean; tls: ServerTls | null };
}

/** How often a worker checks that its channel to the main process is still open. */
const ORPHAN_CHECK_MS = 500;

export function runWorker(config: WorkerConfig): void {
  const send = (message: ToMain, handle?: ListenHandle): void => {
    // A raw handle goes as itself (the type knows only sockets and servers). A send that
    // fails is the main process gone, which the worker learns below.
    if (process.connected) process.send!(message, handle as unknown as SendHandle, () => {});
  };
  const acceptor = new Acceptor(config, stderrLog(config.program));
  // The main process owns the signals: Ctrl-C and a closed terminal reach the whole
  // process group, and no job may end because of them. A worker leaves when told to, or
  // when the main process is gone.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});
  process.on('disconnect', () => acceptor.drain(config.timeouts.shutdownGraceMs));
  // Node closes the channel without a 'disconnect' when the main process dies before it
  // acknowledged a handle sent to it (the copy of the socket with 'ready'): an orphan
  // would listen for ever.
  setInterval(() => {
    if (!process.connected) acceptor.drain(config.timeouts.shutdownGraceMs);
  }, ORPHAN_CHECK_MS).unref();
  process.on('message', (message: ToWorker) => {
    if (message.kind === 'ping') send({ kind: 'pong' });
    else if (message.kind === 'stop') acceptor.drain(null);
    else if (message.kind === 'retire') acceptor.retire();
  });
  const cannotListen = (err: NodeJS.ErrnoException): void => send({ kind: 'cannot-listen', code: err.code ?? 'EINVAL', message: reason(err) });
  let socket: ListenHandle;
  try {
    socket = adoptListener(WORKER_SOCKET_FD);
  } catch (err) {
    return cannotListen(err as NodeJS.ErrnoException);
  }
  // Ready once listening; the copy it comes with is the main process's when it holds none.
  acceptor.listen(socket, cannotListen, () => send({ kind: 'ready' }, socket));
}

/** A worker's connections: admission within the caps, shedding, the one timer sweep, the drain. */
class Acceptor implements Host {
  readonly direction: Direction;
  readonly role: Role;
  readonly timeouts: Timeouts;
  readonly verbose: boolean;
  readonly table: Uint8Array;
  draining = false;
  /** A reload retired this worker: it accepts no more and exits once its connections are served. */
  private retiring = false;

  private readonly caps: Caps;
  /** Every connection this worker holds, those still in their preamble (PROXY header, TLS handshake) included. */
  private readonly held = new Set<Connection | Preamble>();
  private jobs = 0;
  /** null when connections have no preamble. */
  private readonly preamble: PreambleOptions | null;
  private server: Server | null = null;
  private readonly refusedBusy: BurstLog;
  private readonly droppedBusy: BurstLog;
  private readonly shedLog: BurstLog;
  private readonly acceptFailures: BurstLog;
  /** Every burst log, flushed when the worker leaves. */
  private readonly bursts: BurstLog[];

  constructor(
    config: WorkerConfig,
    readonly log: Log,
  ) {
    this.direction = config.direction;
    this.role = config.direction === 'encrypt' ? Role.ENCRYPT : Role.DECRYPT;
    this.timeouts = config.timeouts;
    this.verbose = config.verbose;
    this.table = cipherTable(config.direction);
    this.caps = effectiveCaps(config.caps, openFileLimit());
    const pid = process.pid;
    const caps = `caps: ${this.caps.jobs} jobs, ${this.caps.connections} connections`;
    this.refusedBusy = new BurstLog(log, (n, ms) => `worker ${pid}: server busy: ${n} connection(s) answered BUSY in ${ms} ms (${caps})`);
    this.droppedBusy = new BurstLog(log, (n, ms) => `worker ${pid}: server busy: ${n} connection(s) dropped in ${ms} ms, unanswered: a TLS client cannot read BUSY before its handshake (${caps})`);
    this.shedLog = new BurstLog(log, (n, ms) => `worker ${pid}: shed ${n} connection(s) making the least progress in ${ms} ms, to make room`);
    this.acceptFailures = new BurstLog(log, (n, ms) => `worker ${pid}: out of file descriptors: ${n} connection(s) could not be accepted in ${ms} ms; idle connections shed`);
    this.bursts = [this.refusedBusy, this.droppedBusy, this.shedLog, this.acceptFailures];
    const { proxyProtocol, tls } = config.preamble;
    if (proxyProtocol || tls) {
      const what = proxyProtocol && tls ? 'PROXY header and TLS handshake' : proxyProtocol ? 'PROXY header' : 'TLS handshake';
      const deadlineMs = this.timeouts.handshakeMs;
      const unfinished = new BurstLog(log, (n, ms) => `worker ${pid}: ${n} connection(s) in ${ms} ms began their ${what} and never finished it (closed, or timed out after ${deadlineMs} ms)`);
      this.bursts.push(unfinished);
      this.preamble = {
        proxyProtocol,
        tls: tls && { context: createSecureContext(tls.context), clientCas: tls.clientCas },
        deadlineMs,
        log,
        verbose: this.verbose,
        unfinished: () => void unfinished.add(),
      };
    } else {
      this.preamble = null;
    }
    // One timer for every connection's deadlines, fine enough for the shortest timeout.
    const tick = Math.max(5, Math.min(200, Math.floor(Math.min(this.timeouts.handshakeMs, this.timeouts.idleMs, LINGER_MS) / 5)));
    setInterval(() => this.sweep(), tick).unref();
  }

  listen(handle: ListenHandle, failed: (err: NodeJS.ErrnoException) => void, listening: () => void): void {
    if (this.server || this.draining) return;
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    server.on('error', (err: NodeJS.ErrnoException) => (server.listening ? this.acceptFailed(err) : failed(err)));
    server.listen(handle as Parameters<Server['listen']>[0], listening);
    this.server = server;
  }

  claimJob(connection: Connection): boolean {
    if (this.jobs >= this.caps.jobs) {
      const victim = pickVictim(this.held, Date.now(), true);
      if (!victim || victim === connection) return false;
      this.shed(victim, false);
    }
    this.jobs++;
    return true;
  }

  noteBusy(): void {
    this.refusedBusy.add();
  }

  releaseJob(): void {
    this.jobs--;
  }

  forget(connection: Connection): void {
    this.held.delete(connection);
    this.exitIfDone();
  }

  /** A worker told to stop or retire leaves once it holds no connection. */
  private exitIfDone(): void {
    // On the next turn: the connection that was last is forgotten from its 'close', whose
    // other listeners (its job's end, and the job's log line) have not run yet.
    if ((this.draining || this.retiring) && this.held.size === 0) setImmediate(() => this.exit());
  }

  /** Reload: another generation accepts from now on; the connections accepted here are served to their end. */
  retire(): void {
    if (this.retiring || this.draining) return;
    this.retiring = true;
    this.server?.close();
    this.exitIfDone();
  }

  /** Stops accepting, answers connections that have no job yet, lets the jobs finish; exits when none is left. */
  drain(graceMs: number | null): void {
    if (this.draining) return;
    this.draining = true;
    this.server?.close();
    const now = Date.now();
    // A preamble is closed at once; its close forgets it, and the last one's exits.
    for (const connection of [...this.held]) connection.drain(now);
    if (this.held.size === 0) this.exit();
    // Told by the main process, it will kill us after its grace time; orphaned, we keep our own.
    if (graceMs !== null) setTimeout(() => this.exit(), graceMs);
  }

  /** What the burst logs counted is not lost with the worker (stderr is synchronous on a pipe or file). */
  private exit(): never {
    for (const burst of this.bursts) burst.flush();
    process.exit(0);
  }

  private accept(socket: Socket): void {
    const peer = formatPeer(socket.remoteAddress, socket.remotePort);
    if (!peer || this.draining) return void socket.destroy(); // gone before it was accepted: nothing to answer
    const now = Date.now();
    if (!this.preamble) return this.admit(socket, peer, now);
    const preamble = new Preamble(
      socket,
      peer,
      this.preamble,
      (opened) => {
        this.held.delete(preamble);
        if (!opened) return this.exitIfDone();
        // The handshake deadline runs from the accept: the preamble spent part of it.
        this.admit(opened.socket, opened.peer, now);
      },
      now,
    );
    // A connection in its preamble counts against the cap and may be shed as any other
    // with no job yet; chosen before the newcomer joins, which is never the one shed.
    if (this.held.size >= this.caps.connections) {
      const victim = pickVictim(this.held, now, false);
      if (victim) this.shed(victim, true);
      else if (preamble.busy(now)) this.noteBusy();
      else this.droppedBusy.add();
    }
    this.held.add(preamble);
  }

  /** A connection ready for its HELLO joins the held ones, within the cap (its preamble, if any, held its place). */
  private admit(socket: Socket, peer: string, now: number): void {
    const connection = new Connection(socket, peer, this, now);
    if (this.held.size >= this.caps.connections) {
      // Chosen before the newcomer joins: it is the one making room, never the one shed.
      const victim = pickVictim(this.held, now, false);
      if (victim) {
        this.shed(victim, true);
      } else {
        this.noteBusy();
        connection.busy(now);
      }
    }
    this.held.add(connection);
  }

  /** `forConnection`: the room is a descriptor, which the victim gives up at once (its frame is out) instead of lingering. */
  private shed(victim: Connection | Preamble, forConnection: boolean): void {
    // One already answered only lingers: closing it takes nothing from it.
    if (victim.stage !== 'answered') this.shedLog.add();
    if (forConnection || victim.stage === 'answered') this.held.delete(victim);
    victim.shed(forConnection);
  }

  /** EMFILE or ENFILE: the connections least worth their descriptors go, so that the next accept can succeed. */
  private acceptFailed(err: NodeJS.ErrnoException): void {
    if (err.code !== 'EMFILE' && err.code !== 'ENFILE') return this.log(`worker ${process.pid}: cannot accept a connection: ${reason(err)}`);
    this.acceptFailures.add();
    const now = Date.now();
    for (let i = 0; i < 8; i++) {
      const victim = pickVictim(this.held, now, false);
      if (!victim || victim.stage === 'job') break;
      this.shed(victim, true);
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const connection of this.held) connection.sweep(now);
  }
}
