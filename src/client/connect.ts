// Opens a client's connection to its server, plain or TLS, and says in the project's words what went wrong with TLS.
import { connect as connectTcp, isIP, type OnReadOpts, type Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { OnRead } from '../node-internals.js';
import { ErrorCode } from '../protocol/frames.js';
import { TLS_MIN_VERSION, type ClientTls } from '../tls/options.js';
import { tlsModule } from '../tls/lazy-modules.js';

/** A socket to the server, plain or TLS, that reads into the buffers `onread` gives (the public option of net.connect and tls.connect). */
export function openConnection(host: string, port: number, options: ClientTls | null, onread: OnRead): Socket {
  const reads = { buffer: onread.buffer, callback: (bytes: number, buffer: Uint8Array) => (onread.callback(bytes, buffer), true) };
  const socket = options
    ? tlsModule().connect(<TlsConnectionOptions>{
        host,
        port,
        // A server name is sent, and checked, for host names; an address is checked by itself.
        servername: isIP(host) ? undefined : host,
        ca: options.ca ?? systemCas(),
        cert: options.cert,
        key: options.key,
        minVersion: TLS_MIN_VERSION,
        onread: reads,
      })
    : connectTcp({ host, port, onread: reads });
  socket.setNoDelay(true);
  return socket;
}

/** tls.connect takes `onread` as net.connect does (nodejs/node#35753); @types/node 20 does not say so. */
type TlsConnectionOptions = ConnectionOptions & { onread: OnReadOpts };

/** Node's bundled CAs and, where this Node can list them, the operating system's. */
function systemCas(): string[] | undefined {
  const list = (tlsModule() as { getCACertificates?: (which: string) => string[] }).getCACertificates;
  return list ? [...list('default'), ...list('system')] : undefined;
}

/** A TLS record header: alert (21) or handshake (22), then version 3.x. */
export function isTlsRecord(bytes: Buffer): boolean {
  return bytes.length >= 2 && (bytes[0] === 21 || bytes[0] === 22) && bytes[1] === 3;
}

/** Server certificate problems, as OpenSSL names them in err.code. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
]);
/**
 * What OpenSSL reports, by code or (on a write, where Node says only EPROTO) in its
 * message, in lower case with spaces: the alerts a server sends about the client
 * certificate, and what a TLS client reads when the server answers in plain bytes.
 */
const CERT_WANTED = /certificate required|alert handshake failure/;
const CERT_REJECTED = /alert unknown ca|alert bad certificate|alert certificate unknown|alert access denied/;
const NOT_TLS = /wrong version number|packet length too long|record layer failure/;

/** Why a TLS connection failed, in words; null when the error is not about TLS. */
export function tlsFailure(err: unknown, host: string): string | null {
  const e = err as NodeJS.ErrnoException & { reason?: string; cert?: { subjectaltname?: string } };
  const code = e.code ?? '';
  if (UNTRUSTED.has(code)) return `the server's certificate is not trusted: ${e.message}`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const names = e.cert?.subjectaltname ? ` (it is for ${e.cert.subjectaltname.replace(/DNS:|IP Address:/g, '')})` : '';
    return `the server's certificate is not for ${host}${names}`;
  }
  const said = `${code} ${e.message}`.toLowerCase().replace(/_/g, ' ');
  if (CERT_WANTED.test(said)) return 'the server requires a client certificate (--tls-cert and --tls-key)';
  if (CERT_REJECTED.test(said)) return 'the server refused the client certificate';
  if (NOT_TLS.test(said)) return 'the server does not speak TLS';
  if (code === 'ECONNRESET' && /before secure TLS connection/.test(e.message)) {
    return 'the connection closed during the TLS handshake (does the server speak TLS?)';
  }
  if (code === 'EPROTO' || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return `TLS failed: ${e.reason ?? code}`;
  return null;
}

/** The words for the server's TLS error codes; null for the others. */
export function tlsRefusal(code: number, message: string): string | null {
  if (code === ErrorCode.TLS_REQUIRED) return 'the server requires TLS (use --tls, or --tls-ca FILE)';
  if (code === ErrorCode.CERT_REFUSED) return `the server refused the client certificate: ${message}`;
  return null;
}
