// FrameReader: frames read into one reused buffer reach the sink intact, however slowly it takes them.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import t from 'tap';
import { FrameType, type Frame } from '../src/protocol/frames.js';
import { encodeFrame } from '../src/streams/frame-encoder.js';
import { FrameReader } from '../src/streams/frame-reader.js';
import { ResultSink } from '../src/client/result-sink.js';
import { ReplyCheck } from '../src/client/reply-check.js';
import { seededSymbols } from './helpers/streams.js';

/** Serves `bytes` to one connection and closes; resolves with the port. */
async function serveOnce(bytes: Buffer): Promise<{ port: number; close: () => void }> {
  const server = createServer((socket) => socket.end(bytes));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/** A sink that holds each frame for a turn of the event loop and checks its payload did not change meanwhile. */
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
    if (!this._slow) return next();
    setImmediate(() => {
      if (!frame.payload.equals(copy)) this.changed++;
      next();
    });
  }
}

/**
 * `viaData`: the socket is read from its 'data' events (as a TLS socket is), which the
 * reader gathers into its buffer: what the sink holds must not change under it either.
 */
async function readAll(payload: Buffer, frameSize: number, readBuffer: number, slow: boolean, viaData = false) {
  const frames: Buffer[] = [];
  for (let at = 0; at < payload.length; at += frameSize) {
    frames.push(encodeFrame({ type: FrameType.RESULT, payload: payload.subarray(at, at + frameSize) }));
  }
  frames.push(encodeFrame({ type: FrameType.DONE, payload: Buffer.alloc(0) }));
  const server = await serveOnce(Buffer.concat(frames));
  try {
    const sink = new SlowSink(slow);
    const reader = new FrameReader(sink, { partial: true }, readBuffer);
    const socket = connect({ port: server.port, host: '127.0.0.1', ...(viaData ? {} : { onread: reader.onread }) });
    const err = await new Promise<Error | null>((resolve) => reader.attach(socket, resolve));
    return { err, sink };
  } finally {
    server.close();
  }
}

t.test('a sink that holds frames: the reader waits, and no payload changes under it', async (t) => {
  const payload = seededSymbols(7, 300_000);
  for (const [frameSize, readBuffer, viaData] of [
    [1000, 64, false],
    [65536, 4096, false],
    [7, 100, false],
    [1000, 64, true],
    [65536, 4096, true],
    [7, 100, true],
    [65536, 1 << 20, true],
  ] as const) {
    const how = `frames of ${frameSize}, ${viaData ? "'data' gathered in" : 'reads of'} ${readBuffer}`;
    const { err, sink } = await readAll(payload, frameSize, readBuffer, true, viaData);
    t.equal(err, null, `${how}: the sink finished`);
    t.equal(sink.changed, 0, `${how}: no payload changed while the sink held it`);
    assert.ok(Buffer.concat(sink.results).equals(payload), 'every byte, in order');
    t.equal(sink.types[sink.types.length - 1], FrameType.DONE, 'DONE last');
  }
});

t.test('a sink that takes frames at once gets them all', async (t) => {
  const payload = seededSymbols(9, 300_000);
  for (const viaData of [false, true]) {
    const { err, sink } = await readAll(payload, 5000, 4096, false, viaData);
    t.equal(err, null);
    t.ok(Buffer.concat(sink.results).equals(payload), `every byte, in order${viaData ? ", from 'data'" : ''}`);
  }
});

t.test('a connection that closes inside a frame: an ERROR frame for the sink, then the end', async (t) => {
  const whole = encodeFrame({ type: FrameType.RESULT, payload: Buffer.from('ABCDEF') });
  const server = await serveOnce(whole.subarray(0, 8));
  const sink = new SlowSink(false);
  const reader = new FrameReader(sink, { partial: true }, 64);
  const socket = connect({ port: server.port, host: '127.0.0.1', onread: reader.onread });
  const err = await new Promise<Error | null>((resolve) => reader.attach(socket, resolve));
  server.close();
  t.equal(err, null);
  t.same(sink.types, [FrameType.RESULT, FrameType.ERROR]);
});

t.test('with ResultSink: an output that takes its time gets every byte intact', async (t) => {
  const payload = seededSymbols(11, 200_000);
  const frames: Buffer[] = [];
  for (let at = 0; at < payload.length; at += 3000) frames.push(encodeFrame({ type: FrameType.RESULT, payload: payload.subarray(at, at + 3000) }));
  frames.push(encodeFrame({ type: FrameType.DONE, payload: Buffer.alloc(0) }));
  const server = await serveOnce(Buffer.concat(frames));
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
  const reader = new FrameReader(sink, { partial: true }, 4096);
  const socket = connect({ port: server.port, host: '127.0.0.1', onread: reader.onread });
  const err = await new Promise<Error | null>((resolve) => reader.attach(socket, resolve));
  server.close();
  await new Promise((resolve) => out.end(resolve));
  t.equal(err, null);
  t.equal(changed, 0, 'no chunk changed while the output held it');
  t.ok(Buffer.concat(written).equals(Buffer.concat([payload, Buffer.from('\n')])), 'every byte, then the newline');
});
