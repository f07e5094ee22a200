// Each trick in src/node-internals.ts still does what it is there for, on the Node running the tests (the listening handle's: test/server-listener.test.ts).
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as connectTls, createSecureContext, TLSSocket } from 'node:tls';
import t from 'tap';
import { readIntoBuffer } from '../src/node-internals.js';
import { makeCerts } from './helpers/certs.js';

const until = async (done: () => boolean, what: string): Promise<void> => {
  const end = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

t.test('readIntoBuffer makes an accepted socket read into the buffers we give it, and pause/resume stop and restart it', async (t) => {
  const buffers = [Buffer.alloc(64), Buffer.alloc(64)];
  let next = 0;
  const got: { which: number; text: string }[] = [];
  let dataEvents = 0;
  let served: Socket | null = null;
  const server = createServer((socket) => {
    served = socket;
    socket.on('data', () => dataEvents++);
    t.ok(
      readIntoBuffer(socket, {
        // Each read goes into the buffer returned last: first buffer 0, then 1, then 0...
        buffer: () => buffers[next++ % 2],
        callback: (bytes, buffer) => {
          got.push({ which: buffers.findIndex((b) => b === buffer), text: Buffer.from(buffer.buffer, buffer.byteOffset, bytes).toString('latin1') });
          socket.pause();
        },
      }),
      'this Node lets an accepted socket read into buffers of ours',
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  t.teardown(() => {
    client.destroy();
    server.close();
  });
  await until(() => served !== null, 'the connection');
  client.write('first');
  await until(() => got.length === 1, 'the first read');
  client.write('second');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.same(got.map((g) => g.text), ['first'], 'a paused socket reads nothing more');
  served!.resume();
  await until(() => got.length === 2, 'the read after resume');
  t.same(got, [{ which: 0, text: 'first' }, { which: 1, text: 'second' }], "each read came through the callback, into the buffer given for it");
  t.equal(dataEvents, 0, "and not as 'data'");
});

t.test("readIntoBuffer on a TLS socket over an accepted one (the server's TLS jobs): the cleartext comes into our buffers", async (t) => {
  const certs = makeCerts(t.testdir({}));
  const context = createSecureContext({ cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) });
  const buffer = Buffer.alloc(1 << 16);
  let got = '';
  let dataEvents = 0;
  let installed: boolean | null = null;
  const server = createServer((raw) => {
    // As the preamble makes it (src/server/preamble.ts), then read as a job reads it once the handshake is over.
    const secure = new TLSSocket(raw, { isServer: true, secureContext: context });
    secure.on('error', () => {});
    secure.once('secure', () => {
      secure.on('data', () => dataEvents++);
      installed = readIntoBuffer(secure, { buffer: () => buffer, callback: (bytes) => (got += buffer.toString('latin1', 0, bytes)) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = connectTls({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', ca: readFileSync(certs.ca) });
  t.teardown(() => {
    client.destroy();
    server.close();
  });
  await new Promise((resolve) => client.once('secureConnect', resolve));
  await until(() => installed !== null, 'the handshake on the server');
  t.equal(installed, true, 'this Node lets a TLS socket over an accepted one read into a buffer of ours');
  const message = 'A'.repeat(40_000);
  client.write(message);
  await until(() => got.length >= message.length, 'the cleartext');
  t.equal(got, message, 'every byte, through our buffer');
  t.equal(dataEvents, 0, "and not as 'data'");
});
