// One client connection in a worker: its handshake, its job, its answer and linger, and the progress the eviction rule weighs.
import type { Socket } from 'node:net';
import type { Direction } from '../cipher/alphabet.js';
import { ErrorCode, errorFrame, type Role } from '../protocol/frames.js';
import { LINGER_MS, type Timeouts } from '../protocol/timeouts.js';
import { encodeFrame } from '../streams/frame-encoder.js';
import { plural } from '../format/words.js';
import { judgeHello, parseHello, ROLE_NAMES, type Refusal } from './handshake.js';
import { Job, type JobEnd } from './job.js';
import { answerWholeJob, type WholeAnswer } from './whole-job.js';
import { RateWindow, type Standing } from './limits.js';
import { escapeText, type Log } from './log.js';

/** What a connection needs from the worker that holds it. */
export interface Host {
  readonly direction: Direction;
  readonly role: Role;
  readonly timeouts: Timeouts;
  readonly verbose: boolean;
  readonly log: Log;
  /** The direction's cipher table, for jobs answered whole from their first read. */
  readonly table: Uint8Array;
  /** Whether the server is shutting down: no new job starts. */
  readonly draining: boolean;
  /** A job slot for `connection`, making room if need be; false when there is none. */
  claimJob(connection: Connection): boolean;
  /** The connection no longer holds a job slot. */
  releaseJob(connection: Connection): void;
  /** The connection is closed. */
  forget(connection: Connection): void;
  /** A connection was answered BUSY (logged in bursts, not one line each). */
  noteBusy(): void;
}

export class Connection implements Standing {
  stage: Standing['stage'] = 'handshake';
  since: number;
  lastProgressAt: number;

  /** Bytes of the opening gathered until the HELLO is whole. */
  private opening: Buffer = Buffer.alloc(0);
  private helloSeen = false;
  /** When the current stage runs out: handshake deadline, or the end of the linger. */
  private deadline: number;
  private deadlineReason: string;
  private job: Job | null = null;
  /** Shed to make room: counted in the worker's burst log, not logged alone. */
  private wasShed = false;
  private jobStartedAt = 0;
  /** Bytes moved either way when progress was last sampled. */
  private lastBytes = 0;
  /** What the job's rate is taken over. */
  private readonly window = new RateWindow();

  constructor(
    readonly socket: Socket,
    /** The client's address, taken when it was accepted: a closed socket forgets it. */
    readonly peer: string,
    private readonly host: Host,
    now = Date.now(),
  ) {
    this.since = now;
    // After a preamble (`now` being its accept), the handshake that just finished is progress.
    this.lastProgressAt = Date.now();
    this.deadline = now + host.timeouts.handshakeMs;
    this.deadlineReason = `no HELLO within ${host.timeouts.handshakeMs} ms`;
    socket.on('error', () => {}); // every failure is seen, and logged, where it ends the handshake or the job
    socket.once('close', () => this.closed());
    socket.on('data', this.onOpening);
    socket.on('end', this.onOpeningEnd);
  }

  get windowStart(): number {
    return this.window.start;
  }

  /** Read from the socket when the eviction rule asks. */
  get windowBytes(): number {
    return this.socket.bytesRead + this.socket.bytesWritten - this.window.bytesAtStart;
  }

  /** The timers of every connection, run by the worker's one sweep: deadlines, idleness, the rate's window. */
  sweep(now: number): void {
    const { socket } = this;
    const bytes = socket.bytesRead + socket.bytesWritten;
    if (bytes !== this.lastBytes) {
      this.lastBytes = bytes;
      this.lastProgressAt = now;
    }
    if (this.stage === 'job') {
      this.window.sample(now, bytes);
      const idleMs = this.host.timeouts.idleMs;
      if (now - this.lastProgressAt >= idleMs) this.stopJob(ErrorCode.TIMEOUT, `no traffic for ${idleMs} ms`, now);
    } else if (now >= this.deadline) {
      if (this.stage === 'answered') return void socket.destroy();
      this.refuse({ code: ErrorCode.TIMEOUT, reason: this.deadlineReason }, now, !this.helloSeen && this.opening.length === 0);
    }
  }

  /**
   * Makes room: a job ends with a BUSY frame behind its results, a handshake with a BUSY
   * frame, an answered connection at once. `closeSoon`: the room needed is a descriptor,
   * so the socket goes as soon as its frame is out instead of lingering.
   */
  shed(closeSoon: boolean, now = Date.now()): void {
    const { socket } = this;
    const message = 'server busy: this connection made too little progress';
    this.wasShed = true;
    if (this.stage === 'answered') return void socket.destroy();
    if (this.stage === 'job') this.stopJob(ErrorCode.BUSY, message, now);
    else this.refuse({ code: ErrorCode.BUSY, reason: message }, now, true);
    if (closeSoon) {
      if (socket.writableFinished) socket.destroy();
      else socket.once('finish', () => socket.destroy());
    }
  }

  /** The server is stopping: a connection with no job yet is answered SHUTDOWN; a job goes on. */
  drain(now = Date.now()): void {
    if (this.stage === 'handshake') this.refuse({ code: ErrorCode.SHUTDOWN, reason: 'the server is shutting down' }, now, true);
  }

  /** Answers a new connection that finds the worker full: BUSY, before anything is read. */
  busy(now = Date.now()): void {
    this.refuse({ code: ErrorCode.BUSY, reason: 'server busy' }, now, true);
  }

  private readonly onOpening = (chunk: Buffer): void => {
    const now = Date.now();
    this.lastProgressAt = now;
    this.opening = this.opening.length === 0 ? chunk : Buffer.concat([this.opening, chunk]);
    const hello = parseHello(this.opening);
    if (!hello) return;
    if (!hello.ok) return this.refuse({ code: ErrorCode.PROTOCOL, reason: hello.reason }, now);
    if (!this.helloSeen) {
      this.helloSeen = true;
      const refusal = judgeHello(this.host.role, hello.version, hello.role);
      if (refusal) return this.refuse(refusal, now);
      // A HELLO with nothing after it holds no job slot: it waits as a handshake, first to be shed.
      this.deadline = now + this.host.timeouts.idleMs;
      this.deadlineReason = `no job within ${this.host.timeouts.idleMs} ms of the HELLO`;
    }
    if (hello.rest.length > 0) this.startJob(hello.rest, now);
  };

  /** The client half-closed before its job began. */
  private readonly onOpeningEnd = (): void => {
    const reason = this.helloSeen ? 'the connection closed after its HELLO' : 'the connection closed before its HELLO';
    this.refuse({ code: ErrorCode.PROTOCOL, reason }, Date.now(), this.opening.length === 0);
  };

  private startJob(rest: Buffer, now: number): void {
    const { socket, host } = this;
    if (host.draining) return this.refuse({ code: ErrorCode.SHUTDOWN, reason: 'the server is shutting down' }, now);
    const whole = answerWholeJob(rest, host.table);
    if (whole) return this.answerWhole(whole, now);
    if (!host.claimJob(this)) {
      host.noteBusy();
      return this.refuse({ code: ErrorCode.BUSY, reason: 'server busy' }, now, true);
    }
    socket.off('data', this.onOpening).off('end', this.onOpeningEnd);
    this.opening = Buffer.alloc(0);
    this.stage = 'job';
    this.since = this.jobStartedAt = now;
    // The job's bytes begin with the part of this read that follows the HELLO.
    this.window.begin(now, socket.bytesRead + socket.bytesWritten - rest.length);
    this.job = new Job(socket, host.direction, rest, (end) => this.jobEnded(end));
    // Once the last frame is out, the job's slot is free; the client has LINGER_MS to close.
    socket.once('finish', () => this.answered(Date.now()));
  }

  /** A job answered from its first read: one write, and the connection lingers until the client closes. */
  private answerWhole(whole: WholeAnswer, now: number): void {
    const { socket } = this;
    socket.off('data', this.onOpening).off('end', this.onOpeningEnd);
    this.opening = Buffer.alloc(0);
    this.jobStartedAt = now;
    this.answered(now);
    socket.end(whole.reply);
    socket.resume();
    if (this.host.verbose) this.jobEnded({ symbols: whole.symbols, outcome: 'ok' });
  }

  /** Ends the job with an ERROR frame (idle, shed); the slot is free at once, the socket lingers. */
  private stopJob(code: ErrorCode, message: string, now: number): void {
    this.job?.stop(code, message);
    this.answered(now);
  }

  private jobEnded(end: JobEnd): void {
    if (this.stage === 'job') this.answered(Date.now());
    if ((end.outcome === 'ok' || this.wasShed) && !this.host.verbose) return;
    const what = end.outcome === 'ok' ? 'ok' : `${end.outcome === 'fault' ? 'failed' : 'broken'}: ${escapeText(end.detail ?? 'unknown')}`;
    const ms = Date.now() - this.jobStartedAt;
    this.host.log(
      `${this.peer}: ${ROLE_NAMES[this.host.role]}, ${this.socket.bytesRead} bytes in, ${plural(end.symbols, 'symbol')} out, ${ms} ms, ${what}`,
    );
  }

  /** The connection's last frame is sent or on its way: it may linger, holding no job slot. */
  private answered(now: number): void {
    if (this.stage === 'answered') return;
    if (this.stage === 'job') this.host.releaseJob(this);
    this.stage = 'answered';
    this.since = now;
    this.deadline = now + LINGER_MS;
  }

  /**
   * One ERROR frame and a FIN; then the connection is read and discarded until the client
   * closes, so that what it still sends does not turn the close into a reset that would
   * destroy the frame, for LINGER_MS at most. `quiet`: logged only with --verbose.
   */
  private refuse(refusal: Refusal, now: number, quiet = false): void {
    const { socket } = this;
    socket.off('data', this.onOpening).off('end', this.onOpeningEnd);
    this.opening = Buffer.alloc(0);
    this.answered(now);
    if (!quiet || this.host.verbose) this.host.log(`${this.peer}: ${refusal.logLine ?? `dropped: ${refusal.reason}`}`);
    socket.end(encodeFrame(errorFrame(refusal.code, refusal.reason)));
    socket.resume();
  }

  private closed(): void {
    if (this.stage === 'handshake' && (this.opening.length > 0 || this.host.verbose)) {
      const reason = this.helloSeen ? 'the connection closed after its HELLO' : 'the connection closed before its HELLO';
      this.host.log(`${this.peer}: dropped: ${reason}`);
    }
    if (this.stage === 'job') this.host.releaseJob(this);
    this.stage = 'answered';
    this.host.forget(this);
  }
}
