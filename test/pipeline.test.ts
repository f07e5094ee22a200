// The server's job end to end (src/server/job.ts: socket → deframe → cipher → frame → socket, the stages the workers run), over real sockets, against a model written here: any cutting into frames, any cutting into writes, any fault.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import t from 'tap';
import type { Direction } from '../src/cipher/alphabet.js';
import { CIPHER_WINDOW, ErrorCode, FrameType, type Frame } from '../src/protocol/frames.js';
import { GATHER_SIZE } from '../src/streams/frame-decoder.js';
import { Job, type JobEnd } from '../src/server/job.js';
import { chunkSizes, errorOf, holds, interleave, nonSymbolByte, seededSymbols, split, within } from './helpers/streams.js';
import { decodeFrames, frame, model } from './helpers/wire.js';

/** A server whose every connection is one Job, started on its first bytes, as Connection starts it after the HELLO. */
class JobServer {
  readonly ends: JobEnd[] = [];
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(direction: Direction): Promise<JobServer> {
    let self: JobServer | null = null;
    const server = createServer({ allowHalfOpen: true }, (socket) => {
      self!.sockets.add(socket);
      socket.on('close', () => self!.sockets.delete(socket));
      socket.on('error', () => {});
      const first = (chunk: Buffer): void => {
        socket.off('data', first);
        new Job(socket, direction, chunk, (end) => self!.ends.push(end));
      };
      socket.on('data', first);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    self = new JobServer(server, (server.address() as AddressInfo).port);
    return self;
  }

  stop(): void {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
  }
}

/**
 * Sends `writes` (a turn of the event loop between them, so that they tend to arrive as
 * reads of their own) until the server has ended its side, half-closes, and returns the
 * whole reply once the connection has closed.
 */
async function exchange(port: number, writes: readonly Buffer[]): Promise<Buffer> {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  // The server may close while the rest is still being written: what it sent is what counts.
  socket.on('error', () => {});
  const got: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => got.push(chunk));
  let answered = false;
  socket.on('end', () => (answered = true));
  // Not events.once: it rejects on 'error', and a reset that comes while the writes go on
  // (a server that answered KEY_LAG and closed with bytes unread) would be a rejection no
  // one awaits yet, which fails the run as unhandled.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await once(socket, 'connect');
  for (const bytes of writes) {
    if (answered || socket.destroyed) break;
    if (!socket.write(bytes)) await Promise.race([once(socket, 'drain'), closed]);
    await new Promise((resolve) => setImmediate(resolve));
  }
  socket.end();
  await within(closed, 20_000, 'the job');
  return Buffer.concat(got);
}

const wire = (frames: readonly Frame[]): Buffer => Buffer.concat(frames.map((f) => frame(f.type, f.payload)));

/** What came back: the RESULT symbols joined, and the last frame. */
async function reply(bytes: Buffer): Promise<{ result: string; last: Frame }> {
  const { frames, malformed } = await decodeFrames(bytes);
  assert.ok(!malformed, 'the reply is well-formed frames');
  assert.ok(frames.length > 0, 'the reply has frames');
  const last = frames[frames.length - 1];
  for (const f of frames.slice(0, -1)) assert.equal(f.type, FrameType.RESULT, `a frame of type ${f.type} before the last`);
  return { result: Buffer.concat(frames.slice(0, -1).map((f) => f.payload)).toString('latin1'), last };
}

const direction = fc.constantFrom<Direction>('encrypt', 'decrypt');
const seed = fc.integer();

t.test('any job, framed and written anyhow, one-byte frames and one-byte writes included: the model, then DONE', async (t) => {
  const servers = { encrypt: await JobServer.start('encrypt'), decrypt: await JobServer.start('decrypt') };
  t.teardown(() => Object.values(servers).forEach((s) => s.stop()));
  await holds(
    t,
    'RESULT symbols are the model\'s, every one of them, and the job logs ok',
    fc.asyncProperty(
      direction,
      fc.integer({ min: 0, max: 3000 }),
      seed,
      chunkSizes(64),
      chunkSizes(64),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
      fc.oneof(chunkSizes(8), chunkSizes(5000)),
      async (dir, n, s, textSizes, keySizes, order, writeSizes) => {
        const text = seededSymbols(s, n);
        const key = seededSymbols(~s, n + (s & 15));
        const server = servers[dir];
        const before = server.ends.length;
        const bytes = Buffer.concat([wire(interleave(split(text, textSizes), split(key, keySizes), order)), frame(FrameType.END)]);
        const got = await reply(await exchange(server.port, split(bytes, writeSizes)));
        assert.equal(got.last.type, FrameType.DONE, got.last.type === FrameType.ERROR ? errorOf(got.last).message : '');
        assert.ok(got.result === model(dir, text.toString('latin1'), key.toString('latin1')), 'the model\'s symbols');
        await within(
          (async () => {
            while (server.ends.length === before) await new Promise((resolve) => setTimeout(resolve, 2));
          })(),
          5_000,
          'the job\'s end',
        );
        assert.deepEqual(server.ends[before], { symbols: n, outcome: 'ok', detail: undefined });
      },
    ),
    { numRuns: 120 },
  );
});

t.test('a bad byte anywhere: the symbols before it, then BAD_TEXT or BAD_KEY naming it', async (t) => {
  const server = await JobServer.start('encrypt');
  t.teardown(() => server.stop());
  await holds(
    t,
    'the first bad pair is named at its symbol; what came before it is the model\'s',
    fc.asyncProperty(
      fc.integer({ min: 1, max: 2000 }),
      seed,
      fc.nat(),
      nonSymbolByte(),
      fc.boolean(),
      chunkSizes(40),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
      chunkSizes(3000),
      async (n, s, where, bad, inText, sizes, order, writeSizes) => {
        const text = Buffer.from(seededSymbols(s, n));
        const key = Buffer.from(seededSymbols(~s, n));
        const at = where % n;
        (inText ? text : key)[at] = bad;
        const bytes = Buffer.concat([wire(interleave(split(text, sizes), split(key, sizes), order)), frame(FrameType.END)]);
        const got = await reply(await exchange(server.port, split(bytes, writeSizes)));
        assert.equal(got.last.type, FrameType.ERROR);
        const { code, message } = errorOf(got.last);
        assert.equal(code, inText ? ErrorCode.BAD_TEXT : ErrorCode.BAD_KEY, message);
        assert.match(message, new RegExp(`in the ${inText ? 'text' : 'key'} at symbol ${at + 1}$`));
        assert.ok(got.result.length <= at, `${got.result.length} symbols before a bad one at ${at + 1}`);
        assert.ok(got.result === model('encrypt', text.toString('latin1', 0, got.result.length), key.toString('latin1', 0, got.result.length)));
      },
    ),
    { numRuns: 80 },
  );
});

t.test('KEY_LAG exactly when a stream leads by more than the window, small frames gathered or not', async (t) => {
  const server = await JobServer.start('encrypt');
  t.teardown(() => server.stop());
  await holds(
    t,
    'a lead brought near CIPHER_WINDOW, then small frames in any order: the verdict the frames\' own order gives',
    fc.asyncProperty(
      fc.integer({ min: -2 * GATHER_SIZE, max: 64 }),
      fc.boolean(),
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 300 })), { minLength: 1, maxLength: 200 }),
      chunkSizes(20_000),
      async (offset, textLeads, smalls, writeSizes) => {
        // A first frame that leaves one stream `offset` bytes short of the window's edge.
        const lead = CIPHER_WINDOW + Math.min(0, offset) - 1;
        const frames: Frame[] = [{ type: textLeads ? FrameType.TEXT : FrameType.KEY, payload: Buffer.alloc(lead, 'A') }];
        let textSent = textLeads ? lead : 0;
        let keySent = textLeads ? 0 : lead;
        let verdict: 'DONE' | 'text' | 'key' = 'DONE';
        for (const [isText, n] of smalls) {
          frames.push({ type: isText ? FrameType.TEXT : FrameType.KEY, payload: Buffer.alloc(n, 'B') });
          if (isText) textSent += n;
          else keySent += n;
          if (Math.abs(textSent - keySent) > CIPHER_WINDOW) {
            verdict = textSent > keySent ? 'text' : 'key';
            break;
          }
        }
        // Enough of the other stream at the end for a DONE when no lead went past the window.
        if (verdict === 'DONE' && keySent < textSent) frames.push({ type: FrameType.KEY, payload: Buffer.alloc(textSent - keySent, 'C') });
        const bytes = Buffer.concat([wire(frames), frame(FrameType.END)]);
        const got = await reply(await exchange(server.port, split(bytes, writeSizes)));
        if (verdict === 'DONE') {
          assert.equal(got.last.type, FrameType.DONE, got.last.type === FrameType.ERROR ? errorOf(got.last).message : '');
        } else {
          assert.equal(got.last.type, FrameType.ERROR);
          const { code, message } = errorOf(got.last);
          assert.equal(code, ErrorCode.KEY_LAG, message);
          assert.match(message, new RegExp(`the ${verdict} ran more than ${CIPHER_WINDOW} bytes ahead`));
        }
      },
    ),
    { numRuns: 40 },
  );
});

t.test('small TEXT and KEY frames in one read, near the window: gathered apart, but never judged as a lead they did not reach', async (t) => {
  const server = await JobServer.start('encrypt');
  t.teardown(() => server.stop());
  // Text led by W - 1000; then in one write key 500, text 1200, key 500: the lead never
  // passes W (W-1500, W-300, W-800), though all the text before all the key would (W+200).
  // And the same brought one byte past W at the text frame: KEY_LAG there.
  for (const [what, textPart, verdict] of [
    ['within the window', 1200, 'DONE'],
    ['one byte past it', 1501, 'text'],
  ] as const) {
    const W = CIPHER_WINDOW;
    const frames: Frame[] = [
      { type: FrameType.TEXT, payload: Buffer.alloc(W - 1000, 'A') },
      { type: FrameType.KEY, payload: Buffer.alloc(500, 'B') },
      { type: FrameType.TEXT, payload: Buffer.alloc(textPart, 'C') },
      { type: FrameType.KEY, payload: Buffer.alloc(500, 'D') },
    ];
    const rest = W - 1000 + textPart - 1000;
    const head = wire(frames.slice(0, 1));
    const tail = Buffer.concat([wire(frames.slice(1)), frame(FrameType.KEY, Buffer.alloc(rest, 'E')), frame(FrameType.END)]);
    const got = await reply(await exchange(server.port, [head, tail]));
    if (verdict === 'DONE') t.equal(got.last.type, FrameType.DONE, `${what}: DONE`);
    else t.same(errorOf(got.last), { code: ErrorCode.KEY_LAG, message: `the text ran more than ${W} bytes ahead` }, `${what}: KEY_LAG`);
  }
});

t.test("a client's ERROR frame, cut into reads anyhow: the job ends with PROTOCOL, and logs the client's message", async (t) => {
  const server = await JobServer.start('encrypt');
  t.teardown(() => server.stop());
  await holds(
    t,
    'the message the client sent, however its bytes were cut',
    fc.asyncProperty(fc.string({ minLength: 0, maxLength: 300 }), fc.integer({ min: 0, max: 500 }), chunkSizes(16), async (message, before, writeSizes) => {
      const start = server.ends.length;
      const text = seededSymbols(before, before);
      const bytes = Buffer.concat([frame(FrameType.TEXT, text), frame(FrameType.KEY, text), frame(FrameType.ERROR, Buffer.concat([Buffer.from([1]), Buffer.from(message)]))]);
      const got = await reply(await exchange(server.port, split(bytes, writeSizes)));
      assert.deepEqual(errorOf(got.last), { code: ErrorCode.PROTOCOL, message: 'the client abandoned the job' });
      await within(
        (async () => {
          while (server.ends.length === start) await new Promise((resolve) => setTimeout(resolve, 2));
        })(),
        5_000,
        "the job's end",
      );
      const end = server.ends[start];
      assert.equal(end.outcome, 'fault');
      assert.equal(end.detail, `abandoned by the client: ${message || '(no message)'}`);
    }),
    { numRuns: 60 },
  );
});
