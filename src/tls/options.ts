// The TLS options of servers and clients: their command-line definitions, and the PEM files they name, loaded and checked before anything connects.
import type { KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';
import { reason, UserError } from '../cli/errors.js';
import { type CommandLine } from '../cli/command-line.js';
import { splitPem } from './pem.js';
import { cryptoModule, tlsModule } from './lazy-modules.js';

/** The oldest TLS either side speaks. */
export const TLS_MIN_VERSION = 'TLSv1.2';

/**
 * The server's preference: AES-128-GCM first. Node's default puts AES-256-GCM first,
 * which costs some 1.6 times the CPU per byte here (AES-NI: about 4.4 against 2.7 GB/s a
 * core), and a job's every byte crosses TLS three times on each side; 128-bit AES is a
 * suite TLS 1.3 requires of everyone. The rest is Node's default list, in its order.
 */
export const serverCiphers = (): string =>
  `TLS_AES_128_GCM_SHA256:${tlsModule().DEFAULT_CIPHERS.split(':').filter((suite) => suite !== 'TLS_AES_128_GCM_SHA256').join(':')}`;

type Options = CommandLine['options'];
type Values = Record<string, string | boolean | undefined>;

export const SERVER_TLS_OPTIONS: Options = {
  'tls-cert': { type: 'string', arg: 'FILE', help: 'serve over TLS with this certificate (PEM; with --tls-key)' },
  'tls-key': { type: 'string', arg: 'FILE', help: "the certificate's private key (PEM, without a passphrase)" },
  'tls-client-ca': { type: 'string', arg: 'FILE', help: 'require client certificates signed by this CA (PEM), refuse others' },
};

export const CLIENT_TLS_OPTIONS: Options = {
  tls: { type: 'boolean', help: "connect with TLS, checking the server's certificate and host name against the system's CAs" },
  'tls-ca': { type: 'string', arg: 'FILE', help: "trust this CA (PEM) for the server's certificate instead (implies --tls)" },
  'tls-cert': { type: 'string', arg: 'FILE', help: 'present this client certificate (PEM; with --tls-key; implies --tls)' },
  'tls-key': { type: 'string', arg: 'FILE', help: "the client certificate's private key (PEM, without a passphrase)" },
};

export interface ServerTls {
  /** For tls.createSecureContext: certificate, key, client CA, versions. */
  context: SecureContextOptions;
  /** The CAs a client's certificate must be signed by; null when none is asked for. */
  clientCas: X509Certificate[] | null;
}

export interface ClientTls {
  /** The CA to trust instead of the system's; undefined for the system's. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** The server's TLS from its options; null when it serves plain TCP. */
export function serverTls(values: Values): ServerTls | null {
  const certPath = values['tls-cert'] as string | undefined;
  const keyPath = values['tls-key'] as string | undefined;
  const caPath = values['tls-client-ca'] as string | undefined;
  if (certPath === undefined && keyPath === undefined) {
    if (caPath !== undefined) throw new UserError('--tls-client-ca needs --tls-cert and --tls-key: client certificates are a part of TLS');
    return null;
  }
  const { cert, key } = loadPair(certPath, keyPath);
  const context: SecureContextOptions = { cert, key, minVersion: TLS_MIN_VERSION, ciphers: serverCiphers(), honorCipherOrder: true };
  if (caPath !== undefined) context.ca = loadCertificate('client CA', caPath);
  check(context, certPath!);
  const clientCas = context.ca ? splitPem(context.ca.toString()).map((pem) => new (cryptoModule().X509Certificate)(pem)) : null;
  return { context, clientCas };
}

/** The client's TLS from its options; null when it connects in plain TCP. */
export function clientTls(values: Values): ClientTls | null {
  const caPath = values['tls-ca'] as string | undefined;
  const certPath = values['tls-cert'] as string | undefined;
  const keyPath = values['tls-key'] as string | undefined;
  const pair = certPath !== undefined || keyPath !== undefined;
  if (!values.tls && caPath === undefined && !pair) return null;
  const tls: ClientTls = {};
  if (caPath !== undefined) tls.ca = loadCertificate('CA', caPath);
  if (pair) Object.assign(tls, loadPair(certPath, keyPath));
  check({ ca: tls.ca, cert: tls.cert, key: tls.key, minVersion: TLS_MIN_VERSION }, certPath ?? caPath ?? '');
  return tls;
}

function loadPair(certPath: string | undefined, keyPath: string | undefined): { cert: Buffer; key: Buffer } {
  if (certPath === undefined) throw new UserError('--tls-key needs --tls-cert: the certificate that goes with the key');
  if (keyPath === undefined) throw new UserError('--tls-cert needs --tls-key: the private key of the certificate');
  const cert = loadCertificate('certificate', certPath);
  const key = read('key', keyPath);
  // Asked for a passphrase, OpenSSL would fail with 'interrupted or cancelled': say why first.
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(key.toString('latin1'))) {
    throw new UserError(`key '${keyPath}' is encrypted: give it without a passphrase (openssl pkey -in KEY -out PLAIN)`);
  }
  let keyObject: KeyObject;
  try {
    keyObject = cryptoModule().createPrivateKey(key);
  } catch {
    throw new UserError(`key '${keyPath}' is not a private key in PEM form`);
  }
  if (!new (cryptoModule().X509Certificate)(cert).checkPrivateKey(keyObject)) {
    throw new UserError(`key '${keyPath}' is not the private key of certificate '${certPath}'`);
  }
  return { cert, key };
}

/** A PEM file whose first certificate parses. */
function loadCertificate(what: string, path: string): Buffer {
  const pem = read(what, path);
  try {
    new (cryptoModule().X509Certificate)(pem);
  } catch {
    throw new UserError(`${what} '${path}' is not a certificate in PEM form`);
  }
  return pem;
}

function read(what: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UserError(`cannot read ${what} '${path}': ${reason(err)}`);
  }
}

/** What the checks above do not catch (an unusable key type, a CA file with junk after its first certificate) OpenSSL does. */
function check(context: SecureContextOptions, path: string): void {
  try {
    tlsModule().createSecureContext(context);
  } catch (err) {
    throw new UserError(`cannot use '${path}' for TLS: ${opensslReason(err)}`);
  }
}

/** OpenSSL's reason without its codes and source file: 'no start line', 'wrong version number'. */
export function opensslReason(err: unknown): string {
  const e = err as { reason?: unknown; message?: string };
  return typeof e.reason === 'string' && e.reason !== '' ? e.reason : (e.message ?? String(err));
}
