// What comes before a connection's HELLO, each when configured: the load balancer's PROXY protocol header, then the TLS handshake.
import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { ErrorCode, errorFrame } from '../protocol/frames.js';
import { LINGER_MS } from '../protocol/timeouts.js';
import { encodeFrame } from '../streams/frame-encoder.js';
import { clientCertificateProblem } from './client-certificate.js';
import { formatPeer } from './log.js';
import { parseProxyHeader, type ProxyHeader } from './proxy-header.js';

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
 * Runs the preamble of a freshly accepted `socket`, then calls `done` with the connection
 * to serve, or with null when it was refused (logged, answered and closed here). Without
 * a PROXY header or TLS to wait for, `done` is called at once. Returns a function that
 * abandons the preamble and closes the connection (for a server shutting down).
 */
export function runPreamble(socket: Socket, peer: string, options: PreambleOptions, done: (opened: Opened | null) => void): () => void {
  if (!options.proxyProtocol && !options.tls) {
    done({ socket, peer });
    return () => {};
  }
  let over = false;
  let current: Socket = socket;
  const finish = (opened: Opened | null): void => {
    if (over) return;
    over = true;
    clearTimeout(timer);
    socket.off('data', onData);
    done(opened);
  };
  /** Refuses in plain bytes, as nothing was agreed yet: one ERROR frame, then the linger. */
  const refuse = (code: ErrorCode, message: string, logLine: string | null): void => {
    if (logLine !== null) options.log(`${peer}: ${logLine}`);
    finish(null);
    current.on('error', () => {});
    current.end(encodeFrame(errorFrame(code, message)));
    current.resume();
    setTimeout(() => current.destroy(), LINGER_MS).unref();
  };
  const drop = (logLine: string | null): void => {
    if (logLine !== null) options.log(`${peer}: ${logLine}`);
    finish(null);
    current.destroy();
  };
  const timer = setTimeout(() => {
    if (stage === 'proxy') refuse(ErrorCode.TIMEOUT, `no PROXY protocol header within ${options.deadlineMs} ms`, `refused: no PROXY protocol header within ${options.deadlineMs} ms`);
    else drop(`dropped: no TLS handshake within ${options.deadlineMs} ms`);
  }, options.deadlineMs);

  let stage: 'proxy' | 'tls-first-byte' | 'tls' = options.proxyProtocol ? 'proxy' : 'tls-first-byte';
  let bytes: Buffer = Buffer.alloc(0);

  const startTls = (tls: NonNullable<PreambleOptions['tls']>, rest: Buffer): void => {
    if (rest[0] !== TLS_HANDSHAKE) {
      return refuse(ErrorCode.TLS_REQUIRED, 'this server requires TLS', 'refused: a plain connection to a TLS server');
    }
    stage = 'tls';
    socket.off('data', onData);
    socket.pause();
    // TLSSocket takes bytes already read from a socket it wraps before it reads the rest.
    socket.unshift(rest);
    const secure = new TLSSocket(socket, {
      isServer: true,
      secureContext: tls.context,
      requestCert: tls.clientCas !== null,
      // Judged below instead, so that the client is told why in a frame it can read.
      rejectUnauthorized: false,
    });
    current = secure;
    secure.once('error', (err: NodeJS.ErrnoException & { reason?: string }) => {
      if (!over) drop(`dropped: TLS handshake failed: ${err.reason ?? err.code ?? err.message}`);
    });
    secure.once('secure', () => {
      if (over) return;
      const problem = tls.clientCas && clientCertificateProblem(secure.getPeerX509Certificate(), tls.clientCas);
      if (problem) return refuse(ErrorCode.CERT_REFUSED, problem, `refused: ${problem}`);
      finish({ socket: secure, peer });
    });
  };

  const onData = (chunk: Buffer): void => {
    bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
    if (stage === 'proxy') {
      const header: ProxyHeader | undefined = parseProxyHeader(bytes);
      if (!header) return;
      if (header.kind === 'invalid') return refuse(ErrorCode.PROTOCOL, header.reason, `refused: ${header.reason}`);
      // The balancer's health check, every few seconds: never logged, even with --verbose.
      if (header.kind === 'local') return drop(null);
      if (header.source) peer = formatPeer(header.source.address, header.source.port)!;
      bytes = header.rest;
      if (!options.tls) {
        // Unshifted with no 'data' listener, the bytes wait in the socket for the caller's.
        socket.off('data', onData);
        if (bytes.length > 0) socket.unshift(bytes);
        return finish({ socket, peer });
      }
      stage = 'tls-first-byte';
    }
    if (stage === 'tls-first-byte' && bytes.length > 0) startTls(options.tls!, bytes);
  };
  socket.on('data', onData);
  socket.resume();
  return () => {
    if (!over) drop(null);
  };
}

