// The clients' TLS options end to end: certificate files checked before connecting (exit 1), TLS round trips through a
// TLS-terminating relay to a real server, and every mismatch as one line and exit 2.
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import t, { type Test } from 'tap';
import { makeCerts } from './helpers/certs.js';
import { run, startServer, type Result } from './helpers/programs.js';
import { frame, model, randomSymbols, tempDir } from './helpers/wire.js';

/** Exit `code`, nothing on stdout, one line on stderr naming the program and matching `words`. */
function oneLine(t: Test, result: Result, code: number, words: RegExp, what: string): void {
  t.equal(result.code, code, `${what}: exit ${code}`);
  t.equal(result.stdout.length, 0, `${what}: nothing on stdout`);
  t.match(result.stderr, /^enc_client: error: [^\n]+\n$/, `${what}: one line`);
  t.match(result.stderr, words, `${what}: says so`, { stderr: result.stderr });
}

async function listen(server: Server, t: Test): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => void server.close());
  return (server.address() as AddressInfo).port;
}

/** A TLS server that relays every connection to a plain one on `target`: TLS in front of a real enc_server. */
async function tlsRelay(t: Test, target: number, options: tls.TlsOptions): Promise<number> {
  const relay = tls.createServer({ minVersion: 'TLSv1.2', allowHalfOpen: true, ...options }, (secure) => {
    const plain = connect({ port: target, host: '127.0.0.1', allowHalfOpen: true });
    secure.on('error', () => plain.destroy());
    plain.on('error', () => secure.destroy());
    secure.pipe(plain).pipe(secure);
  });
  relay.on('tlsClientError', () => {});
  return listen(relay, t);
}

/** A plain server that answers every connection with `bytes` and closes; counts the connections. */
async function answering(t: Test, bytes: Buffer): Promise<{ port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    count++;
    socket.on('error', () => {});
    socket.once('data', () => socket.end(bytes));
  });
  return { port: await listen(server, t), connections: () => count };
}

t.test('client TLS', async (t) => {
  const dir = tempDir(t);
  const certs = makeCerts(dir);
  const enc = await startServer('enc_server');
  t.teardown(() => enc.stop());
  const text = randomSymbols(3000);
  const key = randomSymbols(3000);
  writeFileSync(join(dir, 'text'), `${text}\n`);
  writeFileSync(join(dir, 'key'), `${key}\n`);
  const client = (port: number, ...options: string[]): Promise<Result> =>
    run('enc_client', [join(dir, 'text'), join(dir, 'key'), String(port), ...options]);
  const files = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };

  await t.test('unreadable or invalid files: exit 1 before anything connects', async (t) => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    const listener = await answering(t, Buffer.alloc(0));
    const cases: [string[], RegExp, string][] = [
      [['--tls-ca', join(dir, 'missing.pem')], /cannot read CA '.*missing\.pem': no such file or directory/, 'missing CA'],
      [['--tls-ca', junk], /CA '.*junk\.pem' is not a certificate in PEM form/, 'junk CA'],
      [['--tls-ca', dir], /cannot read CA '.*': is a directory/, 'a directory as CA'],
      [['--tls-cert', files.cert], /--tls-cert needs --tls-key/, 'certificate without key'],
      [['--tls-key', files.key], /--tls-key needs --tls-cert/, 'key without certificate'],
      [['--tls-cert', junk, '--tls-key', files.key], /certificate '.*junk\.pem' is not a certificate in PEM form/, 'junk certificate'],
      [['--tls-cert', files.cert, '--tls-key', junk], /key '.*junk\.pem' is not a private key in PEM form/, 'junk key'],
      [['--tls-cert', files.cert, '--tls-key', certs.serverKey], /key '.*server\.key' is not the private key of certificate '.*client\.crt'/, 'key of another certificate'],
      [['--tls-cert', certs.serverCert, '--tls-key', certs.encryptedKey], /key '.*encrypted\.key' is encrypted/, 'encrypted key'],
    ];
    const results = await Promise.all(cases.map(([options]) => client(listener.port, ...options)));
    cases.forEach(([, words, what], i) => oneLine(t, results[i], 1, words, what));
    t.equal(listener.connections(), 0, 'none of them connected');
  });

  await t.test('round trips through TLS', async (t) => {
    const plainTls = await tlsRelay(t, enc.port, { cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) });
    const mutual = await tlsRelay(t, enc.port, {
      cert: readFileSync(certs.serverCert),
      key: readFileSync(certs.serverKey),
      ca: readFileSync(certs.ca),
      requestCert: true,
      rejectUnauthorized: true,
    });
    const want = `${model('encrypt', text, key)}\n`;
    const runs: [Promise<Result>, string][] = [
      [client(plainTls, '--tls-ca', files.ca), '--tls-ca, by address'],
      [client(plainTls, '--tls-ca', files.ca, '--host', 'localhost'), '--tls-ca, by host name'],
      [client(mutual, '--tls-ca', files.ca, '--tls-cert', files.cert, '--tls-key', files.key), 'with a client certificate'],
    ];
    for (const [pending, what] of runs) {
      const result = await pending;
      t.equal(result.code, 0, `${what}: exit 0`, { stderr: result.stderr });
      t.equal(result.stdout.toString('latin1'), want, `${what}: the right ciphertext`);
    }
  });

  await t.test('mismatches: exit 2, one line each', async (t) => {
    const serverPair = { cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) };
    const good = await tlsRelay(t, enc.port, serverPair);
    const wrongName = await tlsRelay(t, enc.port, { cert: readFileSync(certs.wrongNameCert), key: readFileSync(certs.wrongNameKey) });
    const wantsCert = await tlsRelay(t, enc.port, { ...serverPair, ca: readFileSync(certs.ca), requestCert: true, rejectUnauthorized: true });
    const wantsCert12 = await tlsRelay(t, enc.port, { ...serverPair, ca: readFileSync(certs.ca), requestCert: true, rejectUnauthorized: true, maxVersion: 'TLSv1.2' });
    const alert = await answering(t, Buffer.from('15030300020246', 'hex')); // a TLS alert: protocol_version
    const requiresTls = await answering(t, frame(7, Buffer.concat([Buffer.from([11]), Buffer.from('this server requires TLS')])));
    const refusesCert = await answering(t, frame(7, Buffer.concat([Buffer.from([12]), Buffer.from('certificate signed by an unknown CA')])));
    const cases: [Promise<Result>, RegExp, string][] = [
      [client(good, '--tls'), /the server's certificate is not trusted: unable to verify the first certificate/, 'a CA the system does not know'],
      [client(good, '--tls-ca', certs.otherCa), /the server's certificate is not trusted/, 'a CA that did not sign it'],
      [client(wrongName, '--tls-ca', files.ca), /the server's certificate is not for 127\.0\.0\.1 \(it is for elsewhere\.example\)/, 'wrong name, by address'],
      [client(wrongName, '--tls-ca', files.ca, '--host', 'localhost'), /the server's certificate is not for localhost/, 'wrong name, by host name'],
      [client(enc.port, '--tls-ca', files.ca), /the server does not speak TLS/, 'TLS client, plain enc_server'],
      [client(wantsCert, '--tls-ca', files.ca), /the server requires a client certificate/, 'no client certificate (TLS 1.3)'],
      [client(wantsCert12, '--tls-ca', files.ca), /the server requires a client certificate/, 'no client certificate (TLS 1.2)'],
      [client(alert.port), /the server requires TLS/, 'plain client, a TLS alert back'],
      [client(requiresTls.port), /the server requires TLS \(use --tls/, 'plain client, TLS_REQUIRED back'],
      [client(refusesCert.port), /the server refused the client certificate: certificate signed by an unknown CA/, 'CERT_REFUSED back'],
    ];
    for (const [pending, words, what] of cases) oneLine(t, await pending, 2, words, what);
  });
});
