// What comes before a connection's HELLO, each when configured: the load balancer's PROXY protocol header, then the TLS handshake.
import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { ErrorCode, errorFrame } from '../protocol/frames.js';
import { LINGER_MS } from '../protocol/timeouts.js';
import { encodeFrame } from '../streams/frame-encoder.js';
import { clientCertificateProblem } from './client-certificate.js';
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
 * tls-handshake: node:tls at work on the socket; over: handed over, refused or dropped.
 */
type State = 'proxy-header' | 'tls-first-byte' | 'tls-handshake' | 'over';

/**
 * The preamble of a freshly accepted socket, for a server with a PROXY header or TLS (or
 * both) to wait for. `done` is called once, never from the constructor: with the
 * connection to serve, or with null when it was refused (logged, answered and closed here).
 */
export class Preamble {
  private state: State;
  /** Bytes read while the PROXY header, or the first byte after it, is awaited. */
  private bytes: Buffer = Buffer.alloc(0);
  /** The socket an answer goes out on: the accepted one, or the TLS socket over it. */
  private current: Socket;
  private readonly timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly socket: Socket,
    private peer: string,
    private readonly options: PreambleOptions,
    private readonly done: (opened: Opened | null) => void,
  ) {
    this.current = socket;
    this.state = options.proxyProtocol ? 'proxy-header' : 'tls-first-byte';
    this.timer = setTimeout(() => this.timedOut(), options.deadlineMs);
    socket.on('data', this.onData);
    socket.resume();
  }

  /** Closes the connection unanswered (a server shutting down). */
  abandon(): void {
    if (this.state !== 'over') this.drop(null);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.bytes = this.bytes.length === 0 ? chunk : Buffer.concat([this.bytes, chunk]);
    if (this.state === 'proxy-header') {
      const header = parseProxyHeader(this.bytes);
      if (!header) return;
      if (header.kind === 'invalid') return this.refuse(ErrorCode.PROTOCOL, header.reason, `refused: ${header.reason}`);
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

  private startTls(tls: NonNullable<PreambleOptions['tls']>): void {
    const { socket } = this;
    if (this.bytes[0] !== TLS_HANDSHAKE) {
      return this.refuse(ErrorCode.TLS_REQUIRED, 'this server requires TLS', 'refused: a plain connection to a TLS server');
    }
    this.state = 'tls-handshake';
    socket.off('data', this.onData);
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
    secure.once('error', (err: NodeJS.ErrnoException & { reason?: string }) => {
      if (this.state !== 'over') this.drop(`dropped: TLS handshake failed: ${err.reason ?? err.code ?? err.message}`);
    });
    secure.once('secure', () => {
      if (this.state === 'over') return;
      const problem = tls.clientCas && clientCertificateProblem(secure.getPeerX509Certificate(), tls.clientCas);
      if (problem) return this.refuse(ErrorCode.CERT_REFUSED, problem, `refused: ${problem}`);
      this.finish({ socket: secure, peer: this.peer });
    });
  }

  private timedOut(): void {
    const ms = this.options.deadlineMs;
    if (this.state === 'proxy-header') this.refuse(ErrorCode.TIMEOUT, `no PROXY protocol header within ${ms} ms`, `refused: no PROXY protocol header within ${ms} ms`);
    else this.drop(`dropped: no TLS handshake within ${ms} ms`);
  }

  private finish(opened: Opened | null): void {
    if (this.state === 'over') return;
    this.state = 'over';
    if (this.timer) clearTimeout(this.timer);
    this.socket.off('data', this.onData);
    this.done(opened);
  }

  /** Refuses in plain bytes, or inside TLS once it is agreed: one ERROR frame, then the linger. */
  private refuse(code: ErrorCode, message: string, logLine: string | null): void {
    if (logLine !== null) this.options.log(`${this.peer}: ${logLine}`);
    const { current } = this;
    this.finish(null);
    current.on('error', () => {});
    current.end(encodeFrame(errorFrame(code, message)));
    current.resume();
    setTimeout(() => current.destroy(), LINGER_MS).unref();
  }

  private drop(logLine: string | null): void {
    if (logLine !== null) this.options.log(`${this.peer}: ${logLine}`);
    this.finish(null);
    this.current.destroy();
  }
}
