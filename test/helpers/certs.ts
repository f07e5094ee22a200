// Test certificates made with openssl at test time (no key is ever committed): a CA, certificates it signs, and strangers.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export interface Certs {
  dir: string;
  /** The test CA's certificate. */
  ca: string;
  /** For localhost and 127.0.0.1, signed by the CA. */
  serverCert: string;
  serverKey: string;
  /** A client certificate signed by the CA. */
  clientCert: string;
  clientKey: string;
  /** Signed by the CA, but for elsewhere.example only. */
  wrongNameCert: string;
  wrongNameKey: string;
  /** Another CA, and a client certificate it signs: a stranger to the first CA. */
  otherCa: string;
  strangerCert: string;
  strangerKey: string;
  /** The server's key encrypted with a passphrase. */
  encryptedKey: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string): void {
  openssl(dir, ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=otp test ${name}`]);
}

/** A certificate for `cn` (and `altNames`, as subjectAltName wants them) signed by CA `ca`. */
function makeLeaf(dir: string, ca: string, name: string, cn: string, altNames?: string): void {
  openssl(dir, [
    'req', '-x509', '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, ...EC,
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:FALSE',
    ...(altNames ? ['-addext', `subjectAltName=${altNames}`] : []),
  ]);
}

/** Makes the whole set in `dir` (a few hundred milliseconds of openssl). */
export function makeCerts(dir: string): Certs {
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  makeLeaf(dir, 'ca', 'server', 'localhost', 'DNS:localhost,IP:127.0.0.1');
  makeLeaf(dir, 'ca', 'client', 'otp test client');
  makeLeaf(dir, 'ca', 'wrong-name', 'elsewhere.example', 'DNS:elsewhere.example');
  makeLeaf(dir, 'other-ca', 'stranger', 'otp test stranger');
  openssl(dir, ['pkey', '-in', 'server.key', '-aes256', '-passout', 'pass:secret', '-out', 'encrypted.key']);
  const at = (file: string): string => join(dir, file);
  return {
    dir,
    ca: at('ca.crt'),
    serverCert: at('server.crt'),
    serverKey: at('server.key'),
    clientCert: at('client.crt'),
    clientKey: at('client.key'),
    wrongNameCert: at('wrong-name.crt'),
    wrongNameKey: at('wrong-name.key'),
    otherCa: at('other-ca.crt'),
    strangerCert: at('stranger.crt'),
    strangerKey: at('stranger.key'),
    encryptedKey: at('encrypted.key'),
  };
}
