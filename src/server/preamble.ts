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
  readonly rate = 0;
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
    const ms = this.options.deadlineMs;
    switch (this.state) {
      case 'proxy-header':
        return this.refuse(ErrorCode.TIMEOUT, `no PROXY protocol header within ${ms} ms`, `refused: no PROXY protocol header within ${ms} ms`, now);
      case 'tls-first-byte':
      case 'tls-handshake':
        return this.drop(`dropped: no TLS handshake within ${ms} ms`);
      case 'refused':
        return void this.current.destroy();
    }
  }

  /**
   * Makes room for a newcomer: BUSY where the client can read it, in plain bytes before
   * a TLS handshake could begin, and the socket closed as soon as that frame is out (the
   * room needed is a descriptor); closed at once in or before a TLS handshake, whose
   * client could not read a frame yet, and when the connection was answered already.
   */
  shed(): void {
    if (this.stage === 'answered' || this.options.tls) return this.drop(null);
    this.refuse(ErrorCode.BUSY, 'server busy: this connection made too little progress', null, Date.now());
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
      this.drop(null);
      return false;
    }
    this.refuse(ErrorCode.BUSY, 'server busy', null, now);
    return true;
  }

  /** The server is stopping: the connection is closed unanswered. */
  drain(): void {
    if (this.state !== 'dropped' && this.state !== 'over') this.drop(null);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.lastProgressAt = Date.now();
    this.bytes = this.bytes.length === 0 ? chunk : Buffer.concat([this.bytes, chunk]);
    if (this.state === 'proxy-header') {
      const header = parseProxyHeader(this.bytes);
      if (!header) return;
      if (header.kind === 'invalid') return this.refuse(ErrorCode.PROTOCOL, header.reason, `refused: ${header.reason}`, Date.now());
      // The balancer's health check, every few seconds: never logged, even with --verbose.
      if (header.kind === 'local') return this.drop(null);
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
    // Nothing at all: a port probe, not worth a line.
    if (this.socket.bytesRead === 0) return this.drop(null);
    if (this.state === 'proxy-header') {
      const reason = 'the connection closed before its PROXY protocol header';
      this.refuse(ErrorCode.PROTOCOL, reason, `refused: ${reason}`, Date.now());
    } else if (this.state === 'tls-first-byte') {
      this.drop('dropped: the connection closed before its TLS handshake');
    }
  };

  private startTls(tls: NonNullable<PreambleOptions['tls']>): void {
    const { socket } = this;
    if (this.bytes[0] !== TLS_HANDSHAKE) {
      return this.refuse(ErrorCode.TLS_REQUIRED, 'this server requires TLS', 'refused: a plain connection to a TLS server', Date.now());
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
      if (this.state === 'tls-handshake') this.drop(`dropped: TLS handshake failed: ${err.reason ?? err.code ?? err.message}`);
    });
    secure.once('secure', () => {
      if (this.state !== 'tls-handshake') return;
      const problem = tls.clientCas && clientCertificateProblem(secure.getPeerX509Certificate(), tls.clientCas);
      if (problem) return this.refuse(ErrorCode.CERT_REFUSED, problem, `refused: ${problem}`, Date.now());
      this.finish({ socket: secure, peer: this.peer });
    });
  }

  /** Handed over: from now on the connection is its caller's. */
  private finish(opened: Opened): void {
    this.state = 'over';
    this.socket.off('data', this.onData).off('end', this.onEnd);
    this.done(opened);
  }

  /** One ERROR frame, in plain bytes or inside TLS once it is agreed; then the connection lingers, read and discarded, for LINGER_MS at most. */
  private refuse(code: ErrorCode, message: string, logLine: string | null, now: number): void {
    if (logLine !== null) this.options.log(`${this.peer}: ${logLine}`);
    this.state = 'refused';
    this.since = now;
    this.deadline = now + LINGER_MS;
    const { current } = this;
    this.socket.off('data', this.onData).off('end', this.onEnd);
    current.end(encodeFrame(errorFrame(code, message)));
    current.resume();
  }

  private drop(logLine: string | null): void {
    if (logLine !== null) this.options.log(`${this.peer}: ${logLine}`);
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
