// Connections that never finish their preamble, on TLS and --proxy-protocol servers with small caps: they count
// against --connections and are shed oldest first, as silent connections are on a plain server, so that a flood of
// them reopened as they close keeps no real client out; and the log counts what was done: shed, answered BUSY, dropped.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import * as tls from 'node:tls';
import t, { type Test } from 'tap';
import { ErrorCode, FrameType } from '../src/protocol/frames.js';
import { REAL_CLIENT_RATE, SHED_GRACE_MS } from '../src/protocol/capacity.js';
import { makeCerts, type Certs } from './helpers/certs.js';
import { startServer } from './helpers/programs.js';
import { errorCode, exchange, frame, hello, job, jobFiles, linesFor, model, randomSymbols, RawConnection, resultText, runWithin, tempDir, waitUntil } from './helpers/wire.js';

t.jobs = 1;

/** No timeout may make the room here: only the eviction rule. */
const LONG = { OTP_HANDSHAKE_TIMEOUT_MS: '60000', OTP_IDLE_TIMEOUT_MS: '60000' };
const CAP = 8;
const SMALL = ['--workers', '1', '--connections', String(CAP)];
/** A PROXY v2 header whose 16 fixed bytes announce 12 bytes of IPv4 addresses, of which 11 come. */
const PROXY_V2_SHORT = Buffer.from('0d0a0d0a000d0a515549540a2111000c7f0000017f00000104d2', 'hex');
const PROXY_V1 = Buffer.from('PROXY TCP4 198.51.100.7 10.0.0.1 40000 57171\r\n');

/** The first flight of a real TLS client, cut short of its last byte: a handshake that never finishes. */
async function clientHelloShort(): Promise<Buffer> {
  const sink = (await import('node:net')).createServer();
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  const got = new Promise<Buffer>((resolve) => sink.once('connection', (s: Socket) => s.once('data', resolve)));
  const secure = tls.connect({ port: (sink.address() as { port: number }).port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false });
  secure.on('error', () => {});
  const whole = await got;
  secure.destroy();
  sink.close();
  return whole.subarray(0, whole.length - 1);
}

/**
 * `count` connections that send `opening` and then nothing, each opened again `reopenMs`
 * after the server closes it, until the test ends. A real client in its preamble is shed
 * once `--connections` newcomers have come after it: at a full server's scale (256
 * connections a worker, 1500 attackers reopened at once, some 700 newcomers a second a
 * worker) that leaves it some 350 ms; here the cap is 8, and the reopening slow enough to
 * leave it a second (8 newcomers a second) on a loaded machine.
 */
function flood(t: Test, port: number, count: number, opening: Buffer, reopenMs = 2000): { opened: () => number } {
  let opened = 0;
  let stopped = false;
  const sockets = new Set<Socket>();
  const open = (): void => {
    if (stopped) return;
    const socket = connect({ port, host: '127.0.0.1' });
    sockets.add(socket);
    opened++;
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.once('connect', () => opening.length > 0 && socket.write(opening));
    socket.once('close', () => {
      sockets.delete(socket);
      setTimeout(open, reopenMs);
    });
  };
  for (let i = 0; i < count; i++) open();
  t.teardown(() => {
    stopped = true;
    for (const socket of sockets) socket.destroy();
  });
  return { opened: () => opened };
}

t.test('connections that never finish their preamble', async (t) => {
  const certs: Certs = makeCerts(tempDir(t));
  const tlsArgs = ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey];
  const shortHello = await clientHelloShort();

  for (const [what, opening] of [
    ['silent', Buffer.alloc(0)],
    ['a ClientHello short of its last byte', shortHello],
  ] as const) {
    await t.test(`a TLS server: ${CAP * 3} ${what}, reopened as they close; real clients are served one after another`, async (t) => {
      const server = await startServer('enc_server', [...SMALL, ...tlsArgs], LONG);
      t.teardown(() => server.stop());
      const attack = flood(t, server.port, CAP * 3, opening);
      await waitUntil(() => attack.opened() > CAP * 3, 10_000, 'the flood to be reopening');
      const files = jobFiles(t, 300);
      for (let i = 0; i < 5; i++) {
        const result = await runWithin('enc_client', [files.text, files.key, String(server.port), '--tls-ca', certs.ca], 20_000);
        t.equal(result.code, 0, `real client ${i + 1}: exit 0 (${result.ms} ms; the handshake timeout is a minute)`, { stderr: result.stderr });
        t.equal(result.stdout.toString(), files.expected, `real client ${i + 1}: the right ciphertext`);
      }
      t.notMatch(server.stderr(), /answered BUSY/, 'no log line says BUSY was answered: none was');
    });
  }

  for (const [what, opening] of [
    ['silent', Buffer.alloc(0)],
    ['a PROXY v2 header short of its end', PROXY_V2_SHORT],
  ] as const) {
    await t.test(`a --proxy-protocol server: ${CAP * 3} ${what}, reopened as they close; real clients are served one after another`, async (t) => {
      const server = await startServer('enc_server', [...SMALL, '--proxy-protocol'], LONG);
      t.teardown(() => server.stop());
      const attack = flood(t, server.port, CAP * 3, opening);
      await waitUntil(() => attack.opened() > CAP * 3, 10_000, 'the flood to be reopening');
      for (let i = 0; i < 5; i++) {
        const text = randomSymbols(300);
        const key = randomSymbols(300);
        const reply = await exchange(server.port, Buffer.concat([PROXY_V1, job(text, key)]), { timeoutMs: 20_000 });
        t.equal(reply.frames.at(-1)?.type, FrameType.DONE, `real client ${i + 1}: DONE (${reply.ms} ms; the handshake timeout is a minute)`, { said: reply.frames.at(-1)?.payload.toString() });
        t.equal(resultText(reply), model('encrypt', text, key), `real client ${i + 1}: the right ciphertext`);
      }
    });
  }

  await t.test('connections in their preamble count against --connections: 20 silent ones to --connections 4 leave 4 open, the newest', async (t) => {
    for (const [kind, args] of [
      ['TLS', tlsArgs],
      ['PROXY', ['--proxy-protocol']],
    ] as const) {
      const server = await startServer('enc_server', ['--workers', '1', '--connections', '4', ...args], LONG);
      t.teardown(() => server.stop());
      const list: RawConnection[] = [];
      t.teardown(() => list.forEach((c) => c.destroy()));
      for (let i = 0; i < 20; i++) {
        const c = new RawConnection(server.port);
        list.push(c);
        await c.connected;
        // One at a time, so that the worker accepts them in this order.
        await new Promise((r) => setTimeout(r, 10));
      }
      const gone = (c: RawConnection): boolean => c.socket.destroyed || c.socket.readableEnded;
      await waitUntil(() => list.filter(gone).length >= 16, 10_000, `${kind}: 16 of the 20 closed`).catch(() => {});
      // Anything more the server would close, it closes now: give it the time.
      await new Promise((r) => setTimeout(r, 500));
      t.same(list.map(gone), [...Array(16).fill(true), ...Array(4).fill(false)], `${kind}: the 16 oldest were shed, the 4 newest are held`);
      const answers = await Promise.all(list.slice(0, 16).map(async (c) => errorCode({ frames: (await c.frames()).frames } as never)));
      if (kind === 'PROXY') t.ok(answers.every((code) => code === ErrorCode.BUSY), 'each shed one was told BUSY, in plain bytes');
      else t.ok(list.slice(0, 16).every((c) => c.bytes().length === 0), 'each shed one was closed unanswered: it could not read a frame before its TLS handshake');
      await waitUntil(() => /shed 16 connection\(s\)/.test(server.stderr()), 5_000, `${kind}: the burst line`).catch(() => {});
      t.match(server.stderr(), /shed 16 connection\(s\) making the least progress/, `${kind}: one log line counts them`);
    }
  });

  await t.test('a burst of silent, stalled and abandoned preambles is one log line, not one each; with --verbose, one each', async (t) => {
    const HANDSHAKE_MS = 300;
    for (const [kind, args, stalling] of [
      ['TLS', tlsArgs, shortHello],
      ['PROXY', ['--proxy-protocol'], PROXY_V2_SHORT],
    ] as const) {
      for (const verbose of [false, true]) {
        const server = await startServer('enc_server', ['--workers', '1', ...args, ...(verbose ? ['-v'] : [])], { OTP_HANDSHAKE_TIMEOUT_MS: String(HANDSHAKE_MS) });
        t.teardown(() => server.stop());
        const what = `${kind}${verbose ? ' -v' : ''}`;
        const all = Array.from({ length: 30 }, () => new RawConnection(server.port));
        t.teardown(() => all.forEach((c) => c.destroy()));
        await Promise.all(all.map((c) => c.connected));
        // Ten silent; ten stalled in their preamble; five that begin it and leave (a reset:
        // node:tls does not see a FIN in the middle of its handshake); five probes that close at once.
        const [stalled, left, probes] = [all.slice(10, 20), all.slice(20, 25), all.slice(25)];
        [...stalled, ...left].forEach((c) => c.socket.write(stalling));
        left.forEach((c) => setTimeout(() => (kind === 'TLS' ? c.socket.resetAndDestroy() : c.socket.end()), 50));
        probes.forEach((c) => c.socket.end());
        for (const c of all) void c.ended.then(() => c.destroy());
        await waitUntil(() => all.every((c) => c.socket.destroyed), 10_000, `${what}: every one closed`);
        const burst = new RegExp(`: 15 connection\\(s\\) in \\d+ ms began their ${kind === 'TLS' ? 'TLS handshake' : 'PROXY header'} and never finished it \\(closed, or timed out after ${HANDSHAKE_MS} ms\\)`);
        await waitUntil(() => burst.test(server.stderr()), 5_000, `${what}: the burst line`).catch(() => {});
        const lines = server.stderr().split('\n').filter(Boolean);
        t.equal(lines.filter((line) => burst.test(line)).length, 1, `${what}: the fifteen that began are counted in one line`, { lines });
        const own = all.filter((c) => linesFor(server.stderr(), c.localPort).length > 0).length;
        if (verbose) t.equal(own, 30, `${what}: and each of the 30 has a line of its own`);
        else t.equal(lines.length, 1, `${what}: nothing else is logged, not a line each (${own} had one)`, { lines });
      }
    }
  });

  await t.test('a newcomer to a worker whose one connection is a fast job: dropped on a TLS server, told BUSY on a PROXY one, and logged as such', async (t) => {
    for (const kind of ['TLS', 'PROXY'] as const) {
      const server = await startServer('enc_server', ['--workers', '1', '--jobs', '1', '--connections', '1', ...(kind === 'TLS' ? tlsArgs : ['--proxy-protocol'])], LONG);
      t.teardown(() => server.stop());
      const raw = connect({ port: server.port, host: '127.0.0.1' });
      raw.on('error', () => {});
      await once(raw, 'connect');
      let socket: Socket = raw;
      if (kind === 'TLS') {
        socket = tls.connect({ socket: raw, ca: readFileSync(certs.ca), servername: 'localhost' });
        await Promise.race([once(socket, 'secureConnect'), new Promise((_, reject) => setTimeout(() => reject(new Error('no TLS handshake within 10 s')), 10_000).unref())]);
      } else {
        raw.write(PROXY_V1);
      }
      socket.on('error', () => {});
      let results = 0;
      socket.on('data', (chunk: Buffer) => (results += chunk.length));
      socket.write(hello());
      // A fast job: some 200 KB a second, both ways.
      const chunk = randomSymbols(2048);
      const stream = setInterval(() => socket.write(Buffer.concat([frame(FrameType.TEXT, chunk), frame(FrameType.KEY, chunk)])), 20);
      t.teardown(() => clearInterval(stream));
      // Until it has moved what the eviction rule asks of a job just begun, a job is as sheddable as a drip.
      await waitUntil(() => results >= (REAL_CLIENT_RATE * SHED_GRACE_MS) / 1000, 10_000, `${kind}: the job to run`);
      const newcomer = new RawConnection(server.port);
      t.teardown(() => newcomer.destroy());
      await newcomer.connected;
      await Promise.race([newcomer.closed, newcomer.ended, new Promise((r) => setTimeout(r, 5_000))]);
      const { frames } = await newcomer.frames();
      if (kind === 'TLS') t.equal(newcomer.bytes().length, 0, 'TLS: the newcomer is closed unanswered: it could not read BUSY before its handshake');
      else t.equal(errorCode({ frames } as never), ErrorCode.BUSY, 'PROXY: the newcomer is told BUSY in plain bytes');
      const line = kind === 'TLS' ? /server busy: 1 connection\(s\) dropped in \d+ ms, unanswered/ : /server busy: 1 connection\(s\) answered BUSY/;
      await waitUntil(() => line.test(server.stderr()), 5_000, `${kind}: the burst line`).catch(() => {});
      t.match(server.stderr(), line, `${kind}: the log says what was done`);
      if (kind === 'TLS') t.notMatch(server.stderr(), /answered BUSY/, 'TLS: and not that BUSY was answered');
      clearInterval(stream);
      socket.destroy();
    }
  });
});
