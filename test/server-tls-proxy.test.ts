// The built servers with TLS, client certificates and --proxy-protocol: round trips, every mismatch one line and exit 2
// for the client, bad certificate files exit 1 for the server, and log lines that name the right peer.
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import t, { type Test } from 'tap';
import { Role } from '../src/protocol/frames.js';
import { makeCerts } from './helpers/certs.js';
import { freePort, run, startServer, type Result } from './helpers/programs.js';
import { decodeFrames, errorCode, job, model, randomSymbols, resultText, runWithin, tempDir, waitUntil } from './helpers/wire.js';

function oneLine(t: Test, result: Result, program: string, code: number, words: RegExp, what: string): void {
  t.equal(result.code, code, `${what}: exit ${code}`, { stderr: result.stderr });
  t.equal(result.stdout.length, 0, `${what}: nothing on stdout`);
  t.match(result.stderr, new RegExp(`^${program}: error: [^\\n]+\\n$`), `${what}: one line`);
  t.match(result.stderr, words, `${what}: says so`, { stderr: result.stderr });
}

/** Sends `before` in plain bytes, then a whole job over TLS on the same connection; resolves with the reply's frames. */
async function jobAfter(port: number, before: Buffer, text: string, key: string, ca: Buffer) {
  const raw = connect({ port, host: '127.0.0.1' });
  await once(raw, 'connect');
  raw.write(before);
  const secure = tls.connect({ socket: raw, ca, servername: 'localhost' });
  const got: Buffer[] = [];
  secure.on('data', (chunk: Buffer) => got.push(chunk));
  secure.on('error', () => {});
  secure.end(job(text, key));
  await once(secure, 'close');
  return decodeFrames(Buffer.concat(got));
}

t.test('servers with TLS and the PROXY protocol', async (t) => {
  const dir = tempDir(t);
  const certs = makeCerts(dir);
  const ca = readFileSync(certs.ca);
  const text = randomSymbols(5000);
  const key = randomSymbols(5000);
  writeFileSync(join(dir, 'text'), `${text}\n`);
  writeFileSync(join(dir, 'key'), `${key}\n`);
  const want = `${model('encrypt', text, key)}\n`;
  const client = (port: number, ...options: string[]): Promise<Result> =>
    run('enc_client', [join(dir, 'text'), join(dir, 'key'), String(port), ...options]);
  const tlsArgs = ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey];

  await t.test('bad certificate files: the server exits 1 with one line, before listening', async (t) => {
    const port = await freePort();
    const cases: [string, string[], RegExp][] = [
      ['enc_server', ['--tls-cert', join(dir, 'missing.crt'), '--tls-key', certs.serverKey], /cannot read certificate '.*missing\.crt': no such file or directory/],
      ['dec_server', ['--tls-cert', certs.serverCert, '--tls-key', certs.clientKey], /key '.*client\.key' is not the private key of certificate/],
      ['enc_server', ['--tls-cert', certs.serverCert], /--tls-cert needs --tls-key/],
      ['enc_server', ['--tls-client-ca', certs.ca], /--tls-client-ca needs --tls-cert and --tls-key/],
      ['enc_server', [...tlsArgs, '--tls-client-ca', certs.serverKey], /client CA '.*server\.key' is not a certificate in PEM form/],
    ];
    for (const [program, args, words] of cases) {
      // A check that is skipped leaves a server running: it must fail here, not at the runner's timeout.
      const result = await runWithin(program, [String(port), ...args], 10_000);
      t.notOk(result.timedOut, `${args.join(' ')}: the server exits at once (${result.ms} ms)`);
      oneLine(t, result, program, 1, words, args.join(' '));
    }
  });

  await t.test('TLS', async (t) => {
    const server = await startServer('enc_server', [...tlsArgs, '-v']);
    t.teardown(() => server.stop());
    const plainServer = await startServer('enc_server');
    t.teardown(() => plainServer.stop());
    for (const host of [[], ['--host', 'localhost']]) {
      const result = await client(server.port, '--tls-ca', certs.ca, ...host);
      t.equal(result.code, 0, `a round trip over TLS ${host.join(' ')}`, { stderr: result.stderr });
      t.equal(result.stdout.toString('latin1'), want, 'the right ciphertext');
    }
    // A client offering Node's default order (AES-256-GCM first) gets the server's choice.
    const secure = tls.connect({ port: server.port, host: '127.0.0.1', ca, servername: 'localhost' });
    await once(secure, 'secureConnect');
    t.equal(secure.getCipher().name, 'TLS_AES_128_GCM_SHA256', 'the server prefers AES-128-GCM, the cheaper suite');
    secure.destroy();
    oneLine(t, await client(server.port), 'enc_client', 2, /the server requires TLS \(use --tls/, 'a plain client');
    await waitUntil(() => /refused: a plain connection to a TLS server/.test(server.stderr()), 5000, 'the refusal is logged');
    oneLine(t, await client(plainServer.port, '--tls-ca', certs.ca), 'enc_client', 2, /the server does not speak TLS/, 'a TLS client at a plain server');
    oneLine(t, await client(server.port, '--tls'), 'enc_client', 2, /the server's certificate is not trusted/, 'a CA the system does not know');
    oneLine(t, await client(server.port, '--tls-ca', certs.otherCa), 'enc_client', 2, /the server's certificate is not trusted/, 'another CA');
    const wrongName = await startServer('enc_server', ['--tls-cert', certs.wrongNameCert, '--tls-key', certs.wrongNameKey]);
    t.teardown(() => wrongName.stop());
    oneLine(t, await client(wrongName.port, '--tls-ca', certs.ca), 'enc_client', 2, /the server's certificate is not for 127\.0\.0\.1/, 'a certificate for another name');
  });

  await t.test('client certificates', async (t) => {
    const server = await startServer('enc_server', [...tlsArgs, '--tls-client-ca', certs.ca]);
    t.teardown(() => server.stop());
    const withCert = await client(server.port, '--tls-ca', certs.ca, '--tls-cert', certs.clientCert, '--tls-key', certs.clientKey);
    t.equal(withCert.code, 0, 'a client certificate the CA signed: served', { stderr: withCert.stderr });
    t.equal(withCert.stdout.toString('latin1'), want, 'the right ciphertext');
    oneLine(t, await client(server.port, '--tls-ca', certs.ca), 'enc_client', 2, /the server refused the client certificate: no client certificate was presented/, 'no certificate');
    oneLine(
      t,
      await client(server.port, '--tls-ca', certs.ca, '--tls-cert', certs.strangerCert, '--tls-key', certs.strangerKey),
      'enc_client',
      2,
      /the server refused the client certificate: the client certificate is not signed by this server's client CA/,
      'a certificate another CA signed',
    );
    await waitUntil(() => (server.stderr().match(/refused: (no client certificate|the client certificate is not signed)/g) ?? []).length === 2, 5000, 'both refusals logged');
  });

  await t.test('--proxy-protocol', async (t) => {
    const server = await startServer('enc_server', ['--proxy-protocol', '-v'], { OTP_HANDSHAKE_TIMEOUT_MS: '2000' });
    t.teardown(() => server.stop());
    const v1 = Buffer.from('PROXY TCP4 198.51.100.20 10.0.0.1 40000 57171\r\n');
    const v2Local = Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex');
    const v2 = Buffer.from('0d0a0d0a000d0a515549540a2121002420010db800000000000000000000000500000000000000000000000000000001a4550050', 'hex');

    const exchange = async (bytes: Buffer): Promise<Buffer> => {
      const socket = connect({ port: server.port, host: '127.0.0.1' });
      const got: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => got.push(chunk));
      socket.on('error', () => {});
      socket.end(bytes);
      await once(socket, 'close');
      return Buffer.concat(got);
    };
    const small = randomSymbols(40);
    const small2 = randomSymbols(40);
    for (const [header, peer] of [[v1, '198.51.100.20:40000'], [v2, '[2001:db8::5]:42069']] as const) {
      const { frames } = await decodeFrames(await exchange(Buffer.concat([header, job(small, small2, Role.ENCRYPT)])));
      t.equal(resultText({ frames } as never), model('encrypt', small, small2), `a job behind a ${header[0] === 0x50 ? 'v1' : 'v2'} header`);
      await waitUntil(() => server.stderr().includes(`${peer}: enc_client`), 5000, `the log names ${peer}`);
    }
    const before = server.stderr().length;
    t.equal((await exchange(v2Local)).length, 0, 'a LOCAL health check gets nothing back');
    const plainJob = await decodeFrames(await exchange(job(small, small2)));
    t.equal(plainJob.frames.at(-1)?.payload[0], 1, 'a job without a header: PROTOCOL');
    await waitUntil(() => /refused: the connection did not begin with a PROXY protocol header/.test(server.stderr()), 5000, 'logged');
    const since = server.stderr().slice(before).split('\n').filter(Boolean);
    t.equal(since.length, 1, 'of the health check and the headerless job, only the job is logged, even with -v', { since });

    const silent = connect({ port: server.port, host: '127.0.0.1' });
    silent.on('error', () => {});
    const got: Buffer[] = [];
    silent.on('data', (chunk: Buffer) => got.push(chunk));
    await once(silent, 'end');
    silent.destroy();
    const { frames } = await decodeFrames(Buffer.concat(got));
    t.equal(frames.at(-1)?.payload[0], 8, 'no header within the handshake timeout: TIMEOUT');
    await waitUntil(() => /refused: no PROXY protocol header within 2000 ms/.test(server.stderr()), 5000, 'logged');

    const plainServer = await startServer('enc_server');
    t.teardown(() => plainServer.stop());
    const socket = connect({ port: plainServer.port, host: '127.0.0.1' });
    const answer: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => answer.push(chunk));
    socket.on('error', () => {});
    socket.end(Buffer.concat([v1, job(small, small2)]));
    await once(socket, 'close');
    const reply = await decodeFrames(Buffer.concat(answer));
    t.equal(errorCode({ frames: reply.frames } as never), 1, 'without --proxy-protocol a header is a PROTOCOL error');
  });

  await t.test('--proxy-protocol and TLS together', async (t) => {
    const server = await startServer('enc_server', ['--proxy-protocol', ...tlsArgs, '-v']);
    t.teardown(() => server.stop());
    const small = randomSymbols(64);
    const small2 = randomSymbols(64);
    const { frames } = await jobAfter(server.port, Buffer.from('PROXY TCP4 192.0.2.33 10.0.0.1 12345 57171\r\n'), small, small2, ca);
    t.equal(resultText({ frames } as never), model('encrypt', small, small2), 'the job is served over TLS after the header');
    await waitUntil(() => server.stderr().includes('192.0.2.33:12345: enc_client'), 5000, "the log names the header's peer");
  });
});
