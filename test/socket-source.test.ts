// SocketSource and FrameDecoder as the client reads its reply: bytes read into lent buffers reach the sink intact, however slowly it lets them go.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Duplex, PassThrough, pipeline, Writable } from 'node:stream';
import t from 'tap';
import { BufferPool } from '../src/memory/buffer-pool.js';
import { Lease } from '../src/memory/lease.js';
import { FrameType, type Frame } from '../src/protocol/frames.js';
import { FrameDecoder } from '../src/streams/frame-decoder.js';
import { encodeFrame } from '../src/streams/frame-encoder.js';
import { BUFFERS_PER_SOURCE, MIN_ROOM, READ_ALIGN, SocketSource } from '../src/streams/socket-source.js';
import { ResultSink } from '../src/client/result-sink.js';
import { ReplyCheck } from '../src/client/reply-check.js';
import { openConnection } from '../src/client/connect.js';
import { seededSymbols, within } from './helpers/streams.js';

/** Serves `bytes` to one connection, in writes of `writeSize` with a turn of the loop between them, and closes; resolves with the port. */
async function serveOnce(bytes: Buffer, writeSize = bytes.length): Promise<{ port: number; close: () => void }> {
  const server = createServer(async (socket) => {
    socket.on('error', () => {});
    for (let at = 0; at < bytes.length; at += writeSize) {
      if (!socket.write(bytes.subarray(at, at + writeSize))) await once(socket, 'drain');
      await new Promise((resolve) => setImmediate(resolve));
    }
    socket.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/**
 * A sink that holds each frame for a turn of the event loop (`slow`), checks its payload
 * did not change meanwhile, and only then gives its lease back, as a slow stdout would.
 */
class SlowSink extends Writable {
  readonly results: Buffer[] = [];
  changed = 0;
  types: number[] = [];
  constructor(private readonly _slow: boolean) {
    super({ objectMode: true });
  }
  override _write(frame: Frame, _e: BufferEncoding, next: () => void): void {
    const copy = Buffer.from(frame.payload);
    this.types.push(frame.type);
    if (frame.type === FrameType.RESULT) this.results.push(copy);
    const done = (): void => {
      if (!frame.payload.equals(copy)) this.changed++;
      Lease.releaseView(frame.payload);
      next();
    };
    if (this._slow) setImmediate(done);
    else done();
  }
}

/** A Duplex over a real socket that has no handle of its own: SocketSource must read it from its 'data'. */
function handleless(socket: Socket): Socket {
  const inbound = new PassThrough();
  socket.on('data', (chunk: Buffer) => inbound.write(chunk));
  socket.on('end', () => inbound.end());
  const fake = new Duplex({
    read() {
      inbound.resume();
    },
    write(chunk, _e, cb) {
      socket.write(chunk, cb);
    },
  });
  inbound.on('data', (chunk: Buffer) => {
    if (!fake.push(chunk)) inbound.pause();
  });
  inbound.on('end', () => fake.push(null));
  return fake as unknown as Socket;
}

function resultFrames(payload: Buffer, frameSize: number): Buffer {
  const frames: Buffer[] = [];
  for (let at = 0; at < payload.length; at += frameSize) frames.push(encodeFrame({ type: FrameType.RESULT, payload: payload.subarray(at, at + frameSize) }));
  frames.push(encodeFrame({ type: FrameType.DONE, payload: Buffer.alloc(0) }));
  return Buffer.concat(frames);
}

/** The reply path: `via` onread (net.connect's option) or 'data' (a socket that cannot read into our buffers). */
async function readAll(bytes: Buffer, readBuffer: number, slow: boolean, via: 'onread' | 'data', writeSize?: number) {
  const server = await serveOnce(bytes, writeSize);
  try {
    const sink = new SlowSink(slow);
    const source = new SocketSource({ pool: new BufferPool(readBuffer, 2) });
    const raw = via === 'onread' ? openConnection('127.0.0.1', server.port, null, source.onread) : connect({ port: server.port, host: '127.0.0.1' });
    source.attach(via === 'onread' ? raw : handleless(raw), via === 'onread');
    const err = await within(new Promise<Error | null>((resolve) => pipeline(source, new FrameDecoder(), sink, (e) => resolve(e ?? null))), 20_000, 'the reply');
    raw.destroy();
    return { err, sink, source };
  } finally {
    server.close();
  }
}

t.test('a sink that holds frames: the source reads on into free memory only, and no payload changes under it', async (t) => {
  const payload = seededSymbols(7, 300_000);
  for (const [frameSize, readBuffer, via] of [
    [1000, 64, 'onread'],
    [65536, 4096, 'onread'],
    [7, 100, 'onread'],
    [65536, 1 << 20, 'onread'],
    [1000, 64, 'data'],
    [65536, 4096, 'data'],
    [7, 100, 'data'],
  ] as const) {
    const how = `frames of ${frameSize}, buffers of ${readBuffer}, read through ${via}`;
    const { err, sink, source } = await readAll(resultFrames(payload, frameSize), readBuffer, true, via, 8192);
    t.equal(err, null, `${how}: the sink finished`);
    t.equal(sink.changed, 0, `${how}: no payload changed while the sink held it`);
    assert.ok(Buffer.concat(sink.results).equals(payload), 'every byte, in order');
    t.equal(sink.types[sink.types.length - 1], FrameType.DONE, `${how}: DONE last`);
    t.equal(source.buffersInFlight, 0, `${how}: every buffer is back`);
  }
});

t.test('a sink that takes frames at once gets them all', async (t) => {
  const payload = seededSymbols(9, 300_000);
  for (const via of ['onread', 'data'] as const) {
    const { err, sink } = await readAll(resultFrames(payload, 5000), 4096, false, via);
    t.equal(err, null);
    t.ok(Buffer.concat(sink.results).equals(payload), `every byte, in order, through ${via}`);
  }
});

t.test('a connection that closes inside a frame: an ERROR frame for the sink, then the end', async (t) => {
  const whole = encodeFrame({ type: FrameType.RESULT, payload: Buffer.from('ABCDEF') });
  for (const via of ['onread', 'data'] as const) {
    const { err, sink } = await readAll(whole.subarray(0, 8), 64, false, via);
    t.equal(err, null);
    t.same(sink.types, [FrameType.RESULT, FrameType.ERROR], via);
  }
});

t.test('a consumer that lets nothing go: the source stops at its buffers, and goes on when they come back', async (t) => {
  const payload = seededSymbols(3, 3 << 20);
  const server = await serveOnce(resultFrames(payload, 65536));
  t.teardown(() => server.close());
  const held: Frame[] = [];
  const source = new SocketSource({ pool: new BufferPool(64 << 10, 2) });
  const raw = openConnection('127.0.0.1', server.port, null, source.onread);
  t.teardown(() => raw.destroy());
  source.attach(raw, true);
  const decoder = new FrameDecoder();
  source.pipe(decoder);
  decoder.on('data', (f: Frame) => held.push(f));
  // Wait until reading has stopped: nothing more arrives for a while.
  let last = -1;
  await within(
    (async () => {
      while (held.length !== last) {
        last = held.length;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })(),
    10_000,
    'the source stopping',
  );
  const bytesHeld = held.reduce((n, f) => n + f.payload.length, 0);
  t.ok(source.buffersInFlight <= BUFFERS_PER_SOURCE, `${source.buffersInFlight} buffers in flight, at most ${BUFFERS_PER_SOURCE}`);
  t.ok(bytesHeld <= 2 * (64 << 10) + (64 << 10), `${bytesHeld} bytes read while nothing was let go: two buffers' worth, and what reading copied out once stopped`);
  t.ok(bytesHeld < payload.length, 'the source did not read everything');
  // A resume from outside while every buffer is in flight reads into the parking buffer: copied out, nothing lost.
  raw.resume();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const copies = held.slice();
  for (const f of copies) Lease.releaseView(f.payload);
  const got: Buffer[] = copies.filter((f) => f.type === FrameType.RESULT).map((f) => Buffer.from(f.payload));
  decoder.removeAllListeners('data');
  decoder.on('data', (f: Frame) => {
    if (f.type === FrameType.RESULT) got.push(Buffer.from(f.payload));
    Lease.releaseView(f.payload);
  });
  if (!decoder.readableEnded) await within(once(decoder, 'end'), 10_000, 'the rest of the reply');
  t.ok(Buffer.concat(got).equals(payload), 'every byte, in order, once the buffers came back');
});

t.test('with ResultSink: an output that takes its time gets every byte intact', async (t) => {
  const payload = seededSymbols(11, 200_000);
  // Says yes to every write (a high water mark far above it) but holds each chunk a while, as a pipe can.
  const written: Buffer[] = [];
  let changed = 0;
  const out = new Writable({
    highWaterMark: 1 << 30,
    write(chunk: Buffer, _e, next) {
      const copy = Buffer.from(chunk);
      setTimeout(() => {
        if (!chunk.equals(copy)) changed++;
        written.push(copy);
        next();
      }, 1);
    },
  });
  const text = { sent: () => payload.length, total: () => payload.length };
  const sink = new ResultSink(out, new ReplyCheck(text));
  const server = await serveOnce(resultFrames(payload, 3000), 4096);
  const source = new SocketSource({ pool: new BufferPool(4096, 2) });
  const raw = openConnection('127.0.0.1', server.port, null, source.onread);
  source.attach(raw, true);
  const err = await within(new Promise<Error | null>((resolve) => pipeline(source, new FrameDecoder(), sink, (e) => resolve(e ?? null))), 20_000, 'the reply');
  raw.destroy();
  server.close();
  await new Promise((resolve) => out.end(resolve));
  t.equal(err, null);
  t.equal(changed, 0, 'no chunk changed while the output held it');
  t.ok(Buffer.concat(written).equals(Buffer.concat([payload, Buffer.from('\n')])), 'every byte, then the newline');
});

t.test('reads as the socket makes them: a large one is passed on at once and the next begins on a cache line; small ones lie side by side, passed on together', async (t) => {
  const source = new SocketSource({ pool: new BufferPool(1 << 20, 2) });
  const passed: Buffer[] = [];
  source.on('data', (view: Buffer) => passed.push(view));
  await new Promise((resolve) => setImmediate(resolve)); // flowing, and its first _read done
  const { onread } = source;
  /** Reads `bytes` into the buffer the source offers: where it lay in its memory. */
  const read = (bytes: number): number => {
    const into = onread.buffer() as Buffer;
    into.fill(passed.length + 1, 0, bytes);
    onread.callback(bytes, into);
    return into.byteOffset;
  };
  read(10); // the first read, into the parking buffer, copied out: then a buffer is lent
  const first = read(MIN_ROOM + 5);
  t.equal(passed.length, 2, 'the large read was passed on at once, without waiting for the loop to turn');
  t.equal(passed[1].length, MIN_ROOM + 5, 'as one view of what it read');
  const second = read(100);
  t.equal((second - first) % READ_ALIGN, 0, `the read after it begins on a multiple of ${READ_ALIGN} bytes from the buffer's start`);
  t.ok(second - first > MIN_ROOM + 5 && second - first < MIN_ROOM + 5 + READ_ALIGN, 'just past the large one');
  const third = read(200);
  t.equal(third, second + 100, 'a small read: the next one right behind it');
  t.equal(passed.length, 2, 'small reads wait for the loop to turn');
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(passed.length, 3, 'then go on together');
  t.equal(passed[2].length, 300, 'as one view of both');
  source.destroy();
});
