// What comes before a connection's HELLO, each when configured: the load balancer's PROXY protocol header, then the TLS handshake.
import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { ErrorCode, errorFrame } from '../protocol/frames.js';
import { LINGER_MS } from '../protocol/timeouts.js';
import { encodeFrame } from '../streams/frame-encoder.js';
import { clientCertificateProblem } from './client-certificate.js';
import type { Standing } from './limits.js';
import { formatPeer } from './log.js';
import { parseProxyHeader } from './proxy-header.js';

export interface PreambleOptions {
  /** Every connection must begin with a PROXY protocol header (version 1 or 2). */
  proxyProtocol: boolean;
  /** Serve TLS; with `clientCas`, a client must present a certificate one of them signed. */
  tls: { context: SecureContext; clientCas: X509Certificate[] | null } | null;
  /** The whole preamble must be over within this time of the accept. */
  deadlineMs: number;
  log: (line: string) => void;
  /** Log what floods are made of too: connections that sent nothing, or left their preamble unfinished. */
  verbose: boolean;
  /** A preamble begun and never finished (timed out, or the client went away): counted in a burst line, not logged alone. */
  unfinished: () => void;
}

export interface Opened {
  /** The connection to serve: the accepted socket, or the TLS socket over it. */
  socket: Socket;
  /** Who the client is, for the log: the address in the PROXY header when there is one. */
  peer: string;
}

/** The first byte of every TLS connection: a handshake record. */
const TLS_HANDSHAKE = 22;

/**
 * Where a preamble stands. proxy-header: gathering the PROXY header; tls-first-byte: waiting
 * for the first byte after it (or the first byte at all), which must begin a TLS handshake;
 * tls-handshake: node:tls at work on the socket; refused: answered with one ERROR frame,
 * lingering for the client to close; dropped: closed unanswered, its close on the way;
 * over: handed over, or closed.
 */
type State = 'proxy-header' | 'tls-first-byte' | 'tls-handshake' | 'refused' | 'dropped' | 'over';

/**
 * The preamble of a freshly accepted socket, for a server with a PROXY header or TLS (or
 * both) to wait for. `done` is called once, never from the constructor: with the
 * connection to serve, or with null once the connection has closed without one (refused,
 * shed, dropped: logged and answered here). Until then the connection counts against its
 * worker's cap, and the eviction rule weighs it as a connection with no job yet, or, once
 * refused, as one already answered. Its deadline and its linger are run by the worker's
 * sweep, as a Connection's are.
 */
export class Preamble implements Standing {
  since: number;
  lastProgressAt: number;
  /** Never a job: nothing for the rate. */
  readonly windowStart = 0;
  readonly windowBytes = 0;
  private state: State;
  /** Bytes read while the PROXY header, or the first byte after it, is awaited. */
  private bytes: Buffer = Buffer.alloc(0);
  /** The socket an answer goes out on: the accepted one, or the TLS socket over it. */
  private current: Socket;
  /** When the current state runs out: the preamble's deadline, or the end of the linger. */
  private deadline: number;
  /** Bytes moved either way on the accepted socket when progress was last sampled. */
  private lastBytes = 0;

  constructor(
    private readonly socket: Socket,
    private peer: string,
    private readonly options: PreambleOptions,
    private readonly done: (opened: Opened | null) => void,
    now = Date.now(),
  ) {
    this.current = socket;
    this.since = this.lastProgressAt = now;
    this.deadline = now + options.deadlineMs;
    this.state = options.proxyProtocol ? 'proxy-header' : 'tls-first-byte';
    socket.on('error', () => {}); // every failure ends the preamble where it is seen: the TLS socket's, or the close
    socket.once('close', () => this.closed());
    socket.on('data', this.onData);
    socket.once('end', this.onEnd);
    socket.resume();
  }

  get stage(): Standing['stage'] {
    return this.state === 'proxy-header' || this.state === 'tls-first-byte' || this.state === 'tls-handshake' ? 'handshake' : 'answered';
  }

  /** Run by the worker's sweep: progress, the deadline, the end of the linger. */
  sweep(now: number): void {
    const bytes = this.socket.bytesRead + this.socket.bytesWritten;
    if (bytes !== this.lastBytes) {
      this.lastBytes = bytes;
      this.lastProgressAt = now;
    }
    if (now < this.deadline) return;
    if (this.state === 'refused') return void this.current.destroy();
    if (this.stage === 'handshake') this.timedOut(now);
  }

  /**
   * Makes room for a newcomer: BUSY where the client can read it, in plain bytes before
   * a TLS handshake could begin, and the socket closed as soon as that frame is out (the
   * room needed is a descriptor); closed at once in or before a TLS handshake, whose
   * client could not read a frame yet, and when the connection was answered already.
   */
  shed(): void {
    if (this.stage === 'answered' || this.options.tls) return this.drop();
    this.refuse(ErrorCode.BUSY, 'server busy: this connection made too little progress', Date.now());
    const { socket } = this;
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  }

  /**
   * A newcomer that finds the worker full and nothing to shed: BUSY in plain bytes when
   * no TLS is to come, then the linger; closed unanswered otherwise. True when answered.
   */
  busy(now = Date.now()): boolean {
    if (this.options.tls) {
      this.drop();
      return false;
    }
    this.refuse(ErrorCode.BUSY, 'server busy', now);
    return true;
  }

  /** The server is stopping: the connection is closed unanswered. */
  drain(): void {
    if (this.state !== 'dropped' && this.state !== 'over') this.drop();
  }

  private readonly onData = (chunk: Buffer): void => {
    this.lastProgressAt = Date.now();
    this.bytes = this.bytes.length === 0 ? chunk : Buffer.concat([this.bytes, chunk]);
    if (this.state === 'proxy-header') {
      const header = parseProxyHeader(this.bytes);
      if (!header) return;
      if (header.kind === 'invalid') {
        this.log(`refused: ${header.reason}`);
        return this.refuse(ErrorCode.PROTOCOL, header.reason, Date.now());
      }
      // The balancer's health check, every few seconds: never logged, even with --verbose.
      if (header.kind === 'local') return this.drop();
      if (header.source) this.peer = formatPeer(header.source.address, header.source.port)!;
      this.bytes = header.rest;
      if (!this.options.tls) {
        // Unshifted with no 'data' listener, the bytes wait in the socket for the caller's.
        this.socket.off('data', this.onData);
        if (this.bytes.length > 0) this.socket.unshift(this.bytes);
        return this.finish({ socket: this.socket, peer: this.peer });
      }
      this.state = 'tls-first-byte';
    }
    if (this.state === 'tls-first-byte' && this.bytes.length > 0) this.startTls(this.options.tls!);
  };

  /** The client half-closed before its preamble was over (node:tls has its own say once it runs). */
  private readonly onEnd = (): void => {
    // Nothing at all: a port probe, not counted either.
    const silent = this.socket.bytesRead === 0;
    if (!silent) this.options.unfinished();
    if (this.state === 'proxy-header') {
      const reason = 'the connection closed before its PROXY protocol header';
      this.log(`${silent ? 'dropped' : 'refused'}: ${reason}`, true);
      if (silent) this.drop();
      else this.refuse(ErrorCode.PROTOCOL, reason, Date.now());
    } else if (this.state === 'tls-first-byte') {
      this.log('dropped: the connection closed before its TLS handshake', true);
      this.drop();
    }
  };

  private startTls(tls: NonNullable<PreambleOptions['tls']>): void {
    const { socket } = this;
    if (this.bytes[0] !== TLS_HANDSHAKE) {
      this.log('refused: a plain connection to a TLS server');
      return this.refuse(ErrorCode.TLS_REQUIRED, 'this server requires TLS', Date.now());
    }
    this.state = 'tls-handshake';
    socket.off('data', this.onData).off('end', this.onEnd);
    socket.pause();
    // TLSSocket takes bytes already read from a socket it wraps before it reads the rest.
    socket.unshift(this.bytes);
    this.bytes = Buffer.alloc(0);
    const secure = new TLSSocket(socket, {
      isServer: true,
      secureContext: tls.context,
      requestCert: tls.clientCas !== null,
      // Judged below instead, so that the client is told why in a frame it can read.
      rejectUnauthorized: false,
    });
    this.current = secure;
    secure.on('error', (err: NodeJS.ErrnoException & { reason?: string }) => {
      if (this.state !== 'tls-handshake') return;
      // The client went away mid-handshake: what floods are made of, not a fault of TLS.
      const gone = err.code === 'ECONNRESET' || err.code === 'EPIPE';
      if (gone) this.options.unfinished();
      this.log(`dropped: TLS handshake failed: ${err.reason ?? err.code ?? err.message}`, gone);
      this.drop();
    });
    secure.once('secure', () => {
      if (this.state !== 'tls-handshake') return;
      const problem = tls.clientCas && clientCertificateProblem(secure.getPeerX509Certificate(), tls.clientCas);
      if (!problem) return this.finish({ socket: secure, peer: this.peer });
      this.log(`refused: ${problem}`);
      this.refuse(ErrorCode.CERT_REFUSED, problem, Date.now());
    });
  }

  /**
   * No preamble within the deadline. What floods are made of is logged alone only with
   * --verbose: one that sent nothing (a probe, or one of a flood of silent connections)
   * is not logged otherwise, as on a plain server; one that began and stalled is counted
   * in the worker's burst line.
   */
  private timedOut(now: number): void {
    const ms = this.options.deadlineMs;
    if (this.socket.bytesRead > 0) this.options.unfinished();
    if (this.state === 'proxy-header') {
      this.log(`refused: no PROXY protocol header within ${ms} ms`, true);
      this.refuse(ErrorCode.TIMEOUT, `no PROXY protocol header within ${ms} ms`, now);
    } else {
      this.log(`dropped: no TLS handshake within ${ms} ms`, true);
      this.drop();
    }
  }

  /** A line for the log, naming the peer; `floodable`: one only --verbose logs. */
  private log(line: string, floodable = false): void {
    if (!floodable || this.options.verbose) this.options.log(`${this.peer}: ${line}`);
  }

  /** Handed over: from now on the connection is its caller's. */
  private finish(opened: Opened): void {
    this.state = 'over';
    this.socket.off('data', this.onData).off('end', this.onEnd);
    this.done(opened);
  }

  /** One ERROR frame, in plain bytes or inside TLS once it is agreed; then the connection lingers, read and discarded, for LINGER_MS at most. */
  private refuse(code: ErrorCode, message: string, now: number): void {
    this.state = 'refused';
    this.since = now;
    this.deadline = now + LINGER_MS;
    const { current } = this;
    this.socket.off('data', this.onData).off('end', this.onEnd);
    current.end(encodeFrame(errorFrame(code, message)));
    current.resume();
  }

  private drop(): void {
    this.state = 'dropped';
    this.socket.off('data', this.onData).off('end', this.onEnd);
    this.current.destroy();
  }

  private closed(): void {
    if (this.state === 'over') return;
    this.state = 'over';
    this.done(null);
  }
}
