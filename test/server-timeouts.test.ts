// Idle and slow clients: a connection that never finishes its HELLO is dropped after the
// handshake timeout; one that stalls mid-job (not sending, or not reading) after the idle
// timeout, with a TIMEOUT frame when it can still be read, and it holds up nobody in the
// meantime; and twenty idle connections, under the default timeouts, do not keep a real
// client waiting.
import t from 'tap';
import { ErrorCode, FrameType } from '../src/protocol/frames.js';
import { LINGER_MS } from '../src/protocol/timeouts.js';
import { startServer } from './helpers/programs.js';
import {
  errorCode,
  exchange,
  frame,
  frameTypes,
  hello,
  jobFiles,
  linesFor,
  model,
  randomSymbols,
  RawConnection,
  resultText,
  runWithin,
  waitUntil,
} from './helpers/wire.js';

const HANDSHAKE_MS = 300;
const IDLE_MS = 500;
/** One short timeout at a time, so that a loaded machine cannot trip the other one. */
const HANDSHAKE_ENV = { OTP_HANDSHAKE_TIMEOUT_MS: String(HANDSHAKE_MS) };
const IDLE_ENV = { OTP_IDLE_TIMEOUT_MS: String(IDLE_MS) };
/** How late a timeout may fire on a loaded machine (tap runs files in parallel). */
const SLACK_MS = 3_000;

const { TEXT, KEY, RESULT, ERROR } = FrameType;

t.test('short timeouts from the environment', async (t) => {
  await t.test('a connection that never sends its HELLO is closed after the handshake timeout', async (t) => {
    const server = await startServer('enc_server', [], HANDSHAKE_ENV);
    t.teardown(() => server.stop());
    const before = server.stderr().length;
    const [silent, partial] = await Promise.all([
      exchange(server.port, [], { after: 'hold' }),
      exchange(server.port, [Buffer.from([FrameType.HELLO, 0, 0])], { after: 'hold' }),
    ]);
    for (const [what, reply] of [['silent', silent], ['half a HELLO', partial]] as const) {
      t.ok(reply.endedByServer, `${what}: the server closes it`);
      t.ok(reply.ms >= HANDSHAKE_MS - 10, `${what}: not before ${HANDSHAKE_MS} ms (${reply.ms} ms)`);
      t.ok(reply.ms < HANDSHAKE_MS + SLACK_MS, `${what}: soon after ${HANDSHAKE_MS} ms (${reply.ms} ms)`);
      t.same(frameTypes(reply), [ERROR], `${what}: one ERROR frame`);
      t.equal(errorCode(reply), ErrorCode.TIMEOUT, `${what}: code TIMEOUT`);
      t.match(reply.frames[0]?.payload.subarray(1).toString(), `no HELLO within ${HANDSHAKE_MS} ms`, `${what}: the message names the timeout`);
      // A connection that sent nothing is a probe, or one of a flood: not worth a line each.
      const lines = what === 'silent' ? 0 : 1;
      if (lines) await waitUntil(() => linesFor(server.stderr().slice(before), reply.localPort).length > 0, 5_000, `${what}: log line`);
      t.equal(linesFor(server.stderr().slice(before), reply.localPort).length, lines, `${what}: ${lines} log line(s)`);
    }
  });

  await t.test('a HELLO with no job after it is closed after the idle timeout', async (t) => {
    const server = await startServer('enc_server', ['--workers', '1'], IDLE_ENV);
    t.teardown(() => server.stop());
    const before = server.stderr().length;
    const reply = await exchange(server.port, [hello()], { after: 'hold' });
    t.ok(reply.endedByServer, 'the server closes it');
    t.ok(reply.ms >= IDLE_MS - 10, `not before ${IDLE_MS} ms (${reply.ms} ms)`);
    // The handshake timeout (the default, 5000 ms) no longer applies once the HELLO is in.
    t.ok(reply.ms < IDLE_MS + SLACK_MS, `soon after ${IDLE_MS} ms, not at the handshake timeout (${reply.ms} ms)`);
    t.same(frameTypes(reply), [ERROR], 'one ERROR frame');
    t.equal(errorCode(reply), ErrorCode.TIMEOUT, 'code TIMEOUT');
    t.match(reply.frames[0]?.payload.subarray(1).toString(), `no job within ${IDLE_MS} ms`, 'the message names the wait');
    await waitUntil(() => linesFor(server.stderr().slice(before), reply.localPort).length > 0, 5_000, 'log line');
    t.equal(linesFor(server.stderr().slice(before), reply.localPort).length, 1, 'one log line');
  });

  await t.test('a client that stalls mid-job gets a TIMEOUT frame and is closed', async (t) => {
    const server = await startServer('enc_server', [], IDLE_ENV);
    t.teardown(() => server.stop());
    const before = server.stderr().length;
    const [betweenFrames, insideFrame] = await Promise.all([
      exchange(server.port, [hello(), frame(TEXT, 'ABC'), frame(KEY, 'XY')], { after: 'hold' }),
      exchange(server.port, [hello(), frame(TEXT, 'ABCD'), frame(KEY, 'XYZW', 100)], { after: 'hold' }),
    ]);
    for (const [what, reply, expected] of [
      ['stalled between frames', betweenFrames, model('encrypt', 'AB', 'XY')],
      ['stalled inside a frame', insideFrame, model('encrypt', 'ABCD', 'XYZW')],
    ] as const) {
      t.ok(reply.endedByServer, `${what}: the server closes it`);
      t.ok(reply.ms >= IDLE_MS - 10, `${what}: not before ${IDLE_MS} ms (${reply.ms} ms)`);
      t.ok(reply.ms < IDLE_MS + SLACK_MS, `${what}: soon after ${IDLE_MS} ms (${reply.ms} ms)`);
      t.notOk(reply.malformed, `${what}: well-formed frames`);
      t.equal(errorCode(reply), ErrorCode.TIMEOUT, `${what}: the last frame is ERROR TIMEOUT`);
      t.same(frameTypes(reply).slice(0, -1).filter((type) => type !== RESULT), [], `${what}: RESULT frames before it, nothing else`);
      t.equal(resultText(reply), expected, `${what}: the symbols made before the stall were sent`);
      await waitUntil(() => linesFor(server.stderr().slice(before), reply.localPort).length > 0, 5_000, `${what}: log line`);
      t.equal(linesFor(server.stderr().slice(before), reply.localPort).length, 1, `${what}: one log line`);
    }
  });
});

t.test('a stalled client that never closes holds up nobody, and is dropped after idle + linger', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1'], IDLE_ENV);
  t.teardown(() => server.stop());
  const files = jobFiles(t, 200);

  const stalled = new RawConnection(server.port);
  t.teardown(() => stalled.destroy());
  await stalled.connected;
  stalled.socket.write(Buffer.concat([hello(), frame(TEXT, 'HELLO'), frame(KEY, 'WORLD')]));
  // Served by the only worker once the RESULT for those five symbols is back.
  await waitUntil(async () => (await stalled.frames()).frames.some((f) => f.type === RESULT), 15_000, 'the first RESULT');
  const next = await runWithin('enc_client', [files.text, files.key, String(server.port)], 15_000);
  t.equal(next.code, 0, 'the next client is served');
  t.equal(next.stdout.toString(), files.expected, 'correctly');
  t.equal(stalled.socket.destroyed, false, `while the stalled one still holds its job in the same worker (${next.ms} ms)`);
  const endedAfter = await stalled.ended;
  t.ok(endedAfter >= IDLE_MS - 10, `the stalled one is answered after the idle time (${endedAfter} ms)`);
  t.ok(endedAfter < IDLE_MS + SLACK_MS + 2_000, `not much later (${endedAfter} ms)`);
  // After the linger the server has let go: bytes written now are answered with a reset,
  // which the second write sees.
  await new Promise((r) => setTimeout(r, LINGER_MS + 500));
  const poke = setInterval(() => stalled.socket.write('x'), 100);
  await stalled.closed;
  clearInterval(poke);
  t.match(stalled.error, /EPIPE|ECONNRESET/, 'and dropped after the linger');
  const { frames } = await stalled.frames();
  t.equal(frames.at(-1)?.type, ERROR, 'the stalled client got an ERROR frame');
  t.equal(frames.at(-1)?.payload[0], ErrorCode.TIMEOUT, 'code TIMEOUT');
});

t.test('a client that sends but never reads holds up nobody, and is dropped after idle + linger', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1'], IDLE_ENV);
  t.teardown(() => server.stop());
  const files = jobFiles(t, 200);

  const reader = new RawConnection(server.port);
  t.teardown(() => reader.destroy());
  await reader.connected;
  reader.socket.pause(); // read nothing: the results pile up until the server cannot write
  const chunk = randomSymbols(1 << 20);
  reader.socket.write(hello());
  for (let i = 0; i < 16; i++) reader.socket.write(Buffer.concat([frame(TEXT, chunk), frame(KEY, chunk)]));
  const before = server.stderr().length;
  const next = await runWithin('enc_client', [files.text, files.key, String(server.port)], 15_000);
  t.equal(next.code, 0, 'the next client is served');
  t.equal(next.stdout.toString(), files.expected, 'correctly');
  t.equal(reader.socket.destroyed, false, `while the reader still holds its job in the same worker (${next.ms} ms)`);
  // A socket that reads nothing learns of the server's close only from a write, once the
  // kernel has taken all it sent (the server reads a job in 1 MiB reads, so it may have).
  const poke = setInterval(() => reader.socket.write('x'), 100);
  const closedAfter = await reader.closed;
  clearInterval(poke);
  t.ok(closedAfter < IDLE_MS + LINGER_MS + SLACK_MS + 4_000, `the reader is dropped within idle + linger (${closedAfter} ms)`);
  await waitUntil(() => linesFor(server.stderr().slice(before), reader.localPort).length > 0, 5_000, 'a log line for the dropped reader');
  t.equal(linesFor(server.stderr().slice(before), reader.localPort).length, 1, 'one log line for it');
});

t.test('twenty idle connections do not hold up a real client (default timeouts)', async (t) => {
  const server = await startServer('enc_server');
  t.teardown(() => server.stop());
  const files = jobFiles(t, 200);

  // Ten send nothing; five send the first byte of a HELLO and stop; five send a whole
  // HELLO and nothing after it, as many as there are workers.
  const idle = Array.from({ length: 20 }, () => new RawConnection(server.port));
  t.teardown(() => idle.forEach((c) => c.destroy()));
  await Promise.all(idle.map((c) => c.connected));
  idle.slice(10, 15).forEach((c) => c.socket.write(Buffer.from([FrameType.HELLO])));
  idle.slice(15).forEach((c) => c.socket.write(hello()));
  let droppedEarly = 0;
  idle.forEach((c) => void Promise.race([c.ended, c.closed]).then(() => droppedEarly++));

  const result = await runWithin('enc_client', [files.text, files.key, String(server.port)], 10_000);
  const took = result.ms;
  t.equal(result.code, 0, 'enc_client exits 0');
  t.equal(result.stdout.toString(), files.expected, 'with the right ciphertext');
  t.ok(took < 10_000, `within 10 seconds (${took} ms)`);
  t.equal(droppedEarly, 0, 'while all twenty idle connections were still open: served by design, not by a timeout');
  t.equal(server.stderr(), '', 'nothing logged');
});
