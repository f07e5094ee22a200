// The preamble before a HELLO, in one process: PROXY headers however they are cut, LOCAL health checks, refusals and
// deadlines, TLS and client certificates, both together; and every byte after the preamble reaches the connection.
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import * as tls from 'node:tls';
import t, { type Test } from 'tap';
import { FrameType } from '../src/protocol/frames.js';
import { clientCertificateProblem } from '../src/server/client-certificate.js';
import { Preamble, type PreambleOptions } from '../src/server/preamble.js';
import { makeCerts, type Certs } from './helpers/certs.js';
import { decodeFrames, tempDir, waitUntil } from './helpers/wire.js';

interface Harness {
  port: number;
  log: string[];
  /** What each opened connection's peer was, in order. */
  peers: string[];
  /** Preambles begun and never finished (timed out, or the client went away). */
  unfinished: number;
}

/**
 * A server that runs the preamble on each connection, then answers `PEER|` followed by
 * the first 64 bytes the connection sent after its preamble, and closes. Its sweep, as a
 * worker's, runs the preambles' deadlines.
 */
async function harness(t: Test, options: Partial<PreambleOptions>): Promise<Harness> {
  const log: string[] = [];
  const peers: string[] = [];
  const h = { port: 0, log, peers, unfinished: 0 };
  const sockets = new Set<Socket>();
  const preambles = new Set<Preamble>();
  const sweep = setInterval(() => preambles.forEach((p) => p.sweep(Date.now())), 10);
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const full: PreambleOptions = { proxyProtocol: false, tls: null, deadlineMs: 1000, log: (line) => log.push(line), verbose: true, unfinished: () => void h.unfinished++, ...options };
    const preamble = new Preamble(socket, peer, full, (opened) => {
      preambles.delete(preamble);
      if (!opened) return;
      peers.push(opened.peer);
      const got: Buffer[] = [];
      opened.socket.on('data', (chunk: Buffer) => got.push(chunk));
      opened.socket.on('end', () => opened.socket.end(Buffer.concat([Buffer.from(`${opened.peer}|`), ...got]).subarray(0, 200)));
      opened.socket.on('error', () => {});
    });
    preambles.add(preamble);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    clearInterval(sweep);
    server.close();
    for (const socket of sockets) socket.destroy();
  });
  h.port = (server.address() as AddressInfo).port;
  return h;
}

/** Writes `parts` one by one (a pause between), half-closes, and returns everything answered. */
async function talk(socket: Socket, parts: Buffer[]): Promise<Buffer> {
  const got: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => got.push(chunk));
  socket.on('error', () => {});
  if (!(socket instanceof tls.TLSSocket) && socket.connecting) await once(socket, 'connect');
  for (const part of parts) {
    socket.write(part);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  socket.end();
  await once(socket, 'close');
  return Buffer.concat(got);
}

const plain = (port: number): Socket => connect({ port, host: '127.0.0.1', allowHalfOpen: true });

async function errorOf(bytes: Buffer): Promise<{ code: number; message: string } | null> {
  const { frames } = await decodeFrames(bytes);
  const last = frames.at(-1);
  return last && last.type === FrameType.ERROR ? { code: last.payload[0], message: last.payload.subarray(1).toString() } : null;
}

const V2_LOCAL = Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex');
/** A v2 PROXY header for 203.0.113.7:4242 → 10.0.0.1:80. */
const V2_PROXY = Buffer.from('0d0a0d0a000d0a515549540a2111000ccb007107' + '0a000001' + '1092' + '0050', 'hex');

t.test('PROXY protocol', async (t) => {
  const h = await harness(t, { proxyProtocol: true });
  const v1 = Buffer.from('PROXY TCP4 198.51.100.9 10.0.0.1 51000 80\r\n');
  const job = Buffer.from('\x01\x00\x00\x00\x02\x01\x45REST');

  await t.test('v1 and v2, whole, byte by byte, and with the job in the same write', async (t) => {
    const cases: [Buffer[], string][] = [
      [[v1, job], '198.51.100.9:51000'],
      [[Buffer.concat([v1, job])], '198.51.100.9:51000'],
      [[...Buffer.concat([v1, job])].map((b) => Buffer.from([b])), '198.51.100.9:51000'],
      [[V2_PROXY, job], '203.0.113.7:4242'],
      [[Buffer.concat([V2_PROXY, job])], '203.0.113.7:4242'],
      [[...Buffer.concat([V2_PROXY, job])].map((b) => Buffer.from([b])), '203.0.113.7:4242'],
    ];
    for (const [parts, peer] of cases) {
      const answer = await talk(plain(h.port), parts);
      t.equal(answer.toString('latin1'), `${peer}|${job.toString('latin1')}`, `${parts.length} part(s): the header's peer, every byte after it`);
    }
  });

  await t.test('a LOCAL health check is closed quietly', async (t) => {
    const before = h.log.length;
    const answer = await talk(plain(h.port), [V2_LOCAL]);
    t.equal(answer.length, 0, 'nothing answered');
    t.equal(h.log.length, before, 'nothing logged');
  });

  await t.test('no header, or a bad one: refused with a PROTOCOL frame and logged', async (t) => {
    for (const [bytes, words] of [
      [job, /did not begin with a PROXY protocol header/],
      [Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n'), /version 1 header: a port/],
      [Buffer.from('0d0a0d0a000d0a515549540a2111ffff', 'hex'), /version 2 header: 65535 bytes/],
    ] as const) {
      const socket = plain(h.port);
      const answer = await talk(socket, [bytes]);
      t.match(await errorOf(answer), { code: 1, message: words }, `answered: ${words}`);
      t.match(h.log.at(-1), new RegExp(`^127\\.0\\.0\\.1:\\d+: refused: .*${words.source}`), 'logged with the real peer');
    }
  });

  await t.test('no header within the deadline: TIMEOUT, logged', async (t) => {
    const short = await harness(t, { proxyProtocol: true, deadlineMs: 150 });
    const socket = plain(short.port);
    const got: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => got.push(chunk));
    socket.write('PROXY TCP4 1.2.3.4');
    await once(socket, 'end');
    socket.destroy();
    t.match(await errorOf(Buffer.concat(got)), { code: 8, message: 'no PROXY protocol header within 150 ms' });
    t.match(short.log, [/refused: no PROXY protocol header within 150 ms/]);
  });
});

t.test('TLS', async (t) => {
  const certs: Certs = makeCerts(tempDir(t));
  const context = tls.createSecureContext({ cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey), ca: readFileSync(certs.ca) });
  const tlsClient = (port: number, extra: tls.ConnectionOptions = {}): tls.TLSSocket =>
    tls.connect({ port, host: '127.0.0.1', ca: readFileSync(certs.ca), ...extra, ...{ allowHalfOpen: true } } as tls.ConnectionOptions);
  const job = Buffer.from('\x01\x00\x00\x00\x02\x01\x45REST');

  await t.test('a TLS client is served over TLS; a plain one is told TLS_REQUIRED in plain', async (t) => {
    const h = await harness(t, { tls: { context, clientCas: null } });
    t.match((await talk(tlsClient(h.port), [job])).toString('latin1'), /^127\.0\.0\.1:\d+\|\x01\x00\x00\x00\x02\x01EREST$/);
    t.match(await errorOf(await talk(plain(h.port), [job])), { code: 11, message: 'this server requires TLS' });
    t.match(h.log.at(-1), /refused: a plain connection to a TLS server/);
  });

  await t.test('client certificates', async (t) => {
    const h = await harness(t, { tls: { context, clientCas: [new X509Certificate(readFileSync(certs.ca))] } });
    const good = { cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) };
    const stranger = { cert: readFileSync(certs.strangerCert), key: readFileSync(certs.strangerKey) };
    t.match((await talk(tlsClient(h.port, good), [job])).toString('latin1'), /\|\x01/, 'signed by the client CA: served');
    t.match(await errorOf(await talk(tlsClient(h.port), [job])), { code: 12, message: 'no client certificate was presented' }, 'none: CERT_REFUSED');
    t.match(h.log.at(-1), /refused: no client certificate was presented/);
    t.match(await errorOf(await talk(tlsClient(h.port, stranger), [job])), { code: 12, message: /not signed by this server's client CA/ }, 'a stranger: CERT_REFUSED');
    const ca = [new X509Certificate(readFileSync(certs.ca))];
    const client = new X509Certificate(good.cert);
    t.equal(clientCertificateProblem(client, ca), null, 'the judge accepts the good one today');
    t.equal(clientCertificateProblem(client, ca, new Date('2000-01-01')), 'the client certificate is not valid yet');
    t.equal(clientCertificateProblem(client, ca, new Date('2100-01-01')), 'the client certificate has expired');
    t.equal(clientCertificateProblem(client, [new X509Certificate(readFileSync(certs.otherCa)), ...ca]), null, 'any CA of a bundle will do');
  });

  await t.test('PROXY header, then TLS, in one write or apart', async (t) => {
    const h = await harness(t, { proxyProtocol: true, tls: { context, clientCas: null } });
    for (const together of [false, true]) {
      const raw = plain(h.port);
      await once(raw, 'connect');
      raw.write(V2_PROXY);
      // Apart: the header is read alone; together: the ClientHello follows it at once, most likely in the same read.
      if (!together) await new Promise((resolve) => setTimeout(resolve, 20));
      const secure = tlsClient(h.port, { socket: raw });
      t.equal((await talk(secure, [job])).toString('latin1'), `203.0.113.7:4242|${job.toString('latin1')}`, together ? 'together' : 'apart');
    }
  });

  await t.test('a TLS handshake that stalls is dropped at the deadline and logged', async (t) => {
    const h = await harness(t, { tls: { context, clientCas: null }, deadlineMs: 150 });
    const socket = plain(h.port);
    socket.on('error', () => {});
    socket.write(Buffer.from([22, 3, 1, 0, 200, 1]));
    await once(socket, 'end');
    socket.destroy();
    t.match(h.log, [/dropped: no TLS handshake within 150 ms/]);
  });
});

t.test('what floods are made of: without --verbose, nothing logged alone; an unfinished preamble is counted', async (t) => {
  const certs: Certs = makeCerts(tempDir(t));
  const context = tls.createSecureContext({ cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) });
  for (const [kind, options, begun] of [
    ['PROXY', { proxyProtocol: true }, Buffer.from('PROXY TCP4 1.2.3.4')],
    ['TLS', { tls: { context, clientCas: null } }, Buffer.from([22, 3, 1, 0, 200, 1])],
  ] as const) {
    for (const verbose of [false, true]) {
      const h = await harness(t, { ...options, deadlineMs: 1000, verbose });
      /** Sends `bytes`, then holds, half-closes or resets; resolves with the ms to the close. */
      const open = (bytes: Buffer, then: 'hold' | 'end' | 'reset'): Promise<number> => {
        const socket = plain(h.port);
        socket.on('error', () => {});
        socket.on('data', () => {});
        socket.on('end', () => socket.destroy());
        const started = Date.now();
        socket.once('connect', () => {
          if (bytes.length > 0) socket.write(bytes);
          if (then === 'end') socket.end();
          // A FIN in the middle of a TLS handshake goes unnoticed by node:tls until the deadline; a reset does not.
          if (then === 'reset') setTimeout(() => socket.resetAndDestroy(), 50);
        });
        return new Promise((resolve) => socket.once('close', () => resolve(Date.now() - started)));
      };
      // A port probe (connects and closes), a silent connection, one that stalls in its preamble, one that leaves it.
      const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('not closed within 10 s')), 10_000).unref());
      const [probe, silent, stalled] = await Promise.race([
        Promise.all([open(Buffer.alloc(0), 'end'), open(Buffer.alloc(0), 'hold'), open(begun, 'hold'), open(begun, kind === 'TLS' ? 'reset' : 'end')]),
        deadline,
      ]);
      const what = `${kind}${verbose ? ', --verbose' : ''}`;
      t.ok(probe < 500, `${what}: the probe is let go as soon as it closes (${probe} ms), not held to the deadline (1000 ms)`);
      t.ok(silent >= 990 && stalled >= 990, `${what}: the silent one and the stalled one are closed at the deadline (${silent}, ${stalled} ms)`);
      await waitUntil(() => h.unfinished >= 2, 2_000, 'the count').catch(() => {});
      t.equal(h.unfinished, 2, `${what}: the stalled one and the one that left are counted, for the worker's burst line`);
      t.equal(h.log.length, verbose ? 4 : 0, `${what}: ${verbose ? 'each logged alone' : 'none logged alone'}`, { log: h.log });
    }
  }
});
