// node:tls alone (or node:net alone) moving a TLS job's bytes, text and key up and result down, with no work on either side: the least time a TLS job could take (the TLS row's ceiling).
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { connect, createServer, type TlsOptions } from 'node:tls';
import { serverCiphers, TLS_MIN_VERSION } from '../src/tls/options.js';

/** What the server writes back: half of what it reads, as RESULT is half of TEXT and KEY. */
const REPLY = Buffer.alloc(1 << 19, 65);
/** What the client sends, over and over. */
const SEND = Buffer.alloc(1 << 20, 65);

const usage = 'usage: tls-floor-peer server [CERT KEY] PORT | client BYTES [CA] PORT  (TLS with the files, plain TCP without)';

/**
 * Reads everything and answers one byte for every two, in 512 KiB writes of one reused
 * buffer: node:tls's best case, with no per-chunk allocation of its own. Reading pauses
 * while the socket holds writes back, as a real server must: without that, a slow
 * reader's answer piles up in memory (400–600 MiB a job, measured) and the page faults
 * cost more than TLS.
 */
function serve(port: number, cert?: string, key?: string): void {
  const options: TlsOptions | null = cert && key ? { cert: readFileSync(cert), key: readFileSync(key), minVersion: TLS_MIN_VERSION, ciphers: serverCiphers(), honorCipherOrder: true } : null;
  const onConnection = (socket: net.Socket): void => {
    let owed = 0;
    socket.on('data', (chunk: Buffer) => {
      owed += chunk.length / 2;
      for (; owed >= REPLY.length; owed -= REPLY.length) if (!socket.write(REPLY)) socket.pause();
    });
    socket.on('drain', () => socket.resume());
    socket.on('end', () => socket.end(REPLY.subarray(0, Math.round(owed))));
    socket.on('error', () => socket.destroy());
  };
  const server = options ? createServer(options, onConnection) : net.createServer(onConnection);
  // The bench's readiness probe is a plain TCP connection.
  server.on('tlsClientError', () => {});
  server.listen(port, '127.0.0.1');
}

/** Sends `bytes` twice over (text and key) from one buffer, reads the `bytes` that come back, and checks the count. */
function send(port: number, bytes: number, ca?: string): void {
  const socket = ca ? connect({ host: '127.0.0.1', port, ca: readFileSync(ca), minVersion: TLS_MIN_VERSION }) : net.connect({ host: '127.0.0.1', port });
  let sent = 0;
  let received = 0;
  const pump = (): void => {
    while (sent < 2 * bytes) {
      const piece = Math.min(SEND.length, 2 * bytes - sent);
      sent += piece;
      if (!socket.write(SEND.subarray(0, piece))) return void socket.once('drain', pump);
    }
    socket.end();
  };
  socket.once(ca ? 'secureConnect' : 'connect', pump);
  socket.on('error', (err) => {
    process.stderr.write(`tls-floor-peer: ${err.message}\n`);
    process.exitCode = 1;
  });
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  socket.on('end', () => {
    if (received !== bytes) {
      process.stderr.write(`tls-floor-peer: received ${received} bytes, not ${bytes}\n`);
      process.exitCode = 1;
    }
  });
}

const [role, ...rest] = process.argv.slice(2);
const port = Number(rest.pop());
if (role === 'server' && port && rest.length !== 1) serve(port, rest[0], rest[1]);
else if (role === 'client' && port && rest[0]) send(port, Number(rest[0]), rest[1]);
else {
  process.stderr.write(`${usage}\n`);
  process.exitCode = 1;
}
