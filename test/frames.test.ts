// Properties of the length-prefix encoding (encodeFrame, frameHeader, the FrameEncoder stream) and of the FrameDecoder stream the server and client run.
import assert from 'node:assert/strict';
import t from 'tap';
import fc from 'fast-check';
import { ErrorCode, FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD, MAX_PAYLOAD, STREAM_TYPES, type Frame } from '../src/protocol/frames.js';
import { Lease } from '../src/memory/lease.js';
import { FrameDecoder, GATHER_BELOW, GATHER_SIZE, type FrameDecoderOptions } from '../src/streams/frame-decoder.js';
import { COPY_BELOW, encodeFrame, FrameEncoder, frameHeader } from '../src/streams/frame-encoder.js';
import { chunkSizes, errorOf, feed, holds, run, settle, split } from './helpers/streams.js';

/** `n` as 4 bytes, big-endian. */
function u32be(n: number): Buffer {
  return Buffer.from([Math.floor(n / 2 ** 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** The layout, written out here: type byte, payload length as 4 bytes big-endian, payload. */
function layout(frame: Frame): Buffer {
  return Buffer.concat([Buffer.from([frame.type]), u32be(frame.payload.length), frame.payload]);
}

/** A header claiming `length` payload bytes, with no payload after it. */
function header(type: number, length: number): Buffer {
  return Buffer.concat([Buffer.from([type]), u32be(length)]);
}

const isStream = (type: number) => type === FrameType.TEXT || type === FrameType.KEY || type === FrameType.RESULT;

/** A frame type: mostly the protocol's own, sometimes any byte. */
const frameType = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...Object.values(FrameType)) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);

/** A frame whose payload is at most `stream` bytes for TEXT/KEY/RESULT and `control` bytes otherwise, often exactly that. */
const frame = (stream: number, control: number): fc.Arbitrary<Frame> =>
  frameType.chain((type) => {
    const max = isStream(type) ? stream : control;
    return fc
      .oneof(fc.integer({ min: 0, max }), fc.constant(max), fc.constant(0))
      .chain((n) => fc.uint8Array({ minLength: n, maxLength: n }))
      .map((bytes) => ({ type, payload: Buffer.from(bytes) }));
  });

/**
 * A frame that may be large: any length up to `max` for its type, the payload a short
 * random pattern repeated (cheap to generate and to shrink).
 */
const bigFrame = (max: number): fc.Arbitrary<Frame> =>
  fc
    .tuple(
      frameType,
      fc.oneof(fc.integer({ min: 0, max }), fc.integer({ min: 16 * 1024 - 2, max: 16 * 1024 + 2 })),
      fc.uint8Array({ minLength: 1, maxLength: 16 }),
    )
    .map(([type, n, pattern]) => {
      const length = isStream(type) ? n : n % (MAX_CONTROL_PAYLOAD + 1);
      const payload = Buffer.alloc(length);
      for (let i = 0; i < length; i++) payload[i] = pattern[i % pattern.length];
      return { type, payload };
    });

async function encode(frames: readonly Frame[]): Promise<Buffer> {
  return Buffer.concat(frames.map(encodeFrame));
}

function decode(chunks: readonly Buffer[], options: FrameDecoderOptions = {}, end = true): Promise<Frame[]> {
  return feed<Frame>(new FrameDecoder(options), chunks, end);
}

function assertProtocolError(f: Frame | undefined, what: string): string {
  assert.ok(f, `no ERROR frame ${what}`);
  assert.equal(f.type, FrameType.ERROR, `last frame ${what}`);
  const { code, message } = errorOf(f);
  assert.equal(code, ErrorCode.PROTOCOL, message);
  return message;
}

/**
 * What a decoder may make of frames: a TEXT, KEY or RESULT stream's bytes in parts and
 * gathers of any size (its frame boundaries mean nothing), so adjacent parts of one stream
 * are joined and empty ones dropped; every other frame whole, in its place.
 */
function normalize(frames: readonly Frame[]): { type: number; payload: string }[] {
  const out: { type: number; payload: string }[] = [];
  for (const f of frames) {
    if (isStream(f.type) && f.payload.length === 0) continue;
    const last = out[out.length - 1];
    if (last && isStream(f.type) && last.type === f.type) last.payload += f.payload.toString('hex');
    else out.push({ type: f.type, payload: f.payload.toString('hex') });
  }
  return out;
}

/** Each stream type's bytes between control frames: what a decoder with `pairWindow` must keep, TEXT and KEY gathered apart. */
function streamsBetweenControls(frames: readonly Frame[]): string[] {
  const out: string[] = [];
  let streams = new Map<number, string>();
  const close = () => out.push([...streams].sort(([a], [b]) => a - b).map(([type, hex]) => `${type}:${hex}`).join(' '));
  for (const f of frames) {
    if (isStream(f.type)) {
      if (f.payload.length > 0) streams.set(f.type, (streams.get(f.type) ?? '') + f.payload.toString('hex'));
    } else {
      close();
      out.push(`control ${f.type}:${f.payload.toString('hex')}`);
      streams = new Map();
    }
  }
  close();
  return out.filter((x) => x !== '');
}

t.test('the encoder writes type, 4-byte big-endian length, payload', async (t) => {
  await holds(
    t,
    'encodeFrame, and frameHeader followed by the payload, both give the layout',
    fc.asyncProperty(fc.array(fc.oneof(frame(300, 40), bigFrame(40_000)), { maxLength: 6 }), async (frames) => {
      const want = Buffer.concat(frames.map(layout));
      assert.ok(Buffer.concat(frames.map(encodeFrame)).equals(want), 'encodeFrame');
      assert.ok(Buffer.concat(frames.flatMap((f) => [frameHeader(f), f.payload])).equals(want), 'frameHeader and the payload');
    }),
    { numRuns: 100 },
  );
  t.equal(HEADER_SIZE, layout({ type: 0, payload: Buffer.alloc(0) }).length, 'HEADER_SIZE is the header the layout has');
});

t.test('the FrameEncoder stream: the layout, header and payload in one buffer where there is room, lent payloads\' holds kept', async (t) => {
  await holds(
    t,
    'its chunks joined are the layout; a frame with headroom is one view of its own memory; one below COPY_BELOW one new buffer',
    fc.asyncProperty(fc.array(fc.tuple(fc.oneof(frame(300, 40), bigFrame(40_000)), fc.boolean(), fc.boolean()), { maxLength: 6 }), async (specs) => {
      const leases: Lease[] = [];
      const frames: Frame[] = specs.map(([f, headroom, lent]) => {
        if (!headroom && !lent) return f;
        const memory = Buffer.allocUnsafeSlow(HEADER_SIZE + f.payload.length);
        memory.fill(0xab);
        const payload = memory.subarray(HEADER_SIZE);
        f.payload.copy(payload);
        if (lent) {
          const lease = new Lease(memory, () => {});
          lease.hold();
          leases.push(lease);
        }
        return { type: f.type, payload, headroom };
      });
      const want = Buffer.concat(specs.map(([f]) => layout(f)));
      const chunks = await run<Buffer>(new FrameEncoder(), frames);
      assert.ok(Buffer.concat(chunks).equals(want), 'the chunks joined are the layout');
      let at = 0;
      for (const f of frames) {
        const first = chunks[at];
        if (f.headroom) {
          assert.equal(first.buffer, f.payload.buffer, 'a frame with headroom leaves in its own memory');
          assert.equal(first.length, HEADER_SIZE + f.payload.length, 'as one chunk');
          at += 1;
        } else if (f.payload.length < COPY_BELOW) {
          const apart = first.buffer !== f.payload.buffer || first.byteOffset + first.length <= f.payload.byteOffset || f.payload.byteOffset + f.payload.length <= first.byteOffset;
          assert.ok(apart, 'a small payload is copied');
          assert.equal(first.length, HEADER_SIZE + f.payload.length, 'behind its header, one chunk');
          at += 1;
        } else {
          assert.equal(chunks[at + 1], f.payload, 'a large payload leaves as itself, after its header');
          at += 2;
        }
      }
      // Each lent payload's hold went with a chunk of its memory, or was given back with a copy.
      for (const lease of leases) {
        const carried = chunks.filter((c) => Lease.of(c) === lease).length;
        assert.equal(lease.holds, carried, 'a lent payload holds its lease once per chunk that carries its bytes');
      }
    }),
    { numRuns: 150 },
  );
});

t.test('decode(encode(frames)) = frames, as a byte stream cut anyhow', async (t) => {
  await holds(
    t,
    'the same frames, up to the joining of parts, whatever the chunks, 1-byte chunks included',
    fc.asyncProperty(fc.array(frame(300, 40), { maxLength: 10 }), chunkSizes(40), async (frames, sizes) => {
      const bytes = await encode(frames);
      for (const chunks of [[bytes], split(bytes, sizes), split(bytes, [1])]) {
        assert.deepEqual(normalize(await decode(chunks)), normalize(frames));
      }
    }),
    { numRuns: 200 },
  );

  await holds(
    t,
    'with pairWindow: each stream\'s own bytes in order between control frames, TEXT and KEY maybe gathered apart',
    fc.asyncProperty(fc.array(frame(300, 40), { maxLength: 10 }), chunkSizes(40), fc.integer({ min: 1, max: 4 * GATHER_SIZE }), async (frames, sizes, window) => {
      const bytes = await encode(frames);
      for (const chunks of [[bytes], split(bytes, sizes), split(bytes, [1])]) {
        assert.deepEqual(streamsBetweenControls(await decode(chunks, { pairWindow: window })), streamsBetweenControls(frames));
      }
    }),
    { numRuns: 200 },
  );

  t.test('large frames: around the gathering and copying thresholds, and at MAX_PAYLOAD', async (t) => {
    const sizes = [GATHER_BELOW - 1, GATHER_BELOW, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 100_000, MAX_PAYLOAD];
    const frames = sizes.map((n, i) => ({
      type: [FrameType.TEXT, FrameType.KEY, FrameType.RESULT][i % 3],
      payload: Buffer.alloc(n, i + 65),
    }));
    const bytes = await encode(frames);
    t.ok(bytes.equals(Buffer.concat(frames.map(layout))), 'encoded as the layout says');
    for (const chunk of [bytes.length, 4093, 65536]) {
      t.same(normalize(await decode(split(bytes, [chunk]))), normalize(frames), `${chunk}-byte chunks`);
    }
  });
});

t.test('zero-copy, and with pairWindow gathers for small TEXT and KEY parts: the work is linear in the bytes however they are framed', async (t) => {
  await holds(
    t,
    'unpaired nothing is copied; paired, only parts of TEXT and KEY under GATHER_BELOW, gathers of at most GATHER_SIZE',
    fc.asyncProperty(fc.array(bigFrame(3 * GATHER_BELOW), { maxLength: 8 }), chunkSizes(20_000), fc.boolean(), async (frames, sizes, paired) => {
      const bytes = await encode(frames);
      const chunks = split(bytes, sizes).map((c) => Buffer.from(c));
      // The parts each TEXT or KEY payload comes in: its bytes within each chunk.
      let small = 0;
      let at = 0;
      for (const f of frames) {
        const start = at + HEADER_SIZE;
        at = start + f.payload.length;
        if (f.type !== FrameType.TEXT && f.type !== FrameType.KEY) continue;
        for (let c = 0, from = 0; c < chunks.length; from += chunks[c++].length) {
          const part = Math.min(at, from + chunks[c].length) - Math.max(start, from);
          if (part > 0 && part < GATHER_BELOW) small += part;
        }
      }
      let copied = 0;
      for (const f of await decode(chunks, paired ? { pairWindow: 1 << 20 } : {})) {
        if (!isStream(f.type) || chunks.some((c) => c.buffer === f.payload.buffer)) continue;
        copied += f.payload.length;
        assert.ok(f.payload.length <= GATHER_SIZE, `a gather of ${f.payload.length} bytes`);
      }
      assert.ok(copied <= (paired ? small : 0), `${copied} bytes copied, of ${small} in parts of TEXT and KEY under GATHER_BELOW`);
    }),
    { numRuns: 100 },
  );

  for (const [what, types] of [
    ['one-byte TEXT frames', [FrameType.TEXT]],
    ['one-byte TEXT and KEY frames in turn', [FrameType.TEXT, FrameType.KEY]],
  ] as const) {
    const n = 100_000;
    const bytes = Buffer.concat(Array.from({ length: n }, (_, i) => encodeFrame({ type: types[i % types.length], payload: Buffer.from([65 + (i % 26)]) })));
    const got = await decode(split(bytes, [65536]), { pairWindow: 1 << 20 });
    const most = types.length * (Math.ceil(n / types.length / GATHER_SIZE) + Math.ceil(bytes.length / 65536));
    t.ok(got.length <= most, `${what}: ${n} frames come out as ${got.length}, at most ${most}`);
    t.same(streamsBetweenControls(got), streamsBetweenControls(bytesAsFrames(bytes)), `${what}: every byte of each stream, in order`);
  }
});

/** The test's own reading of encoded frames, for comparing what the decoder made. */
function bytesAsFrames(bytes: Buffer): Frame[] {
  const out: Frame[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUInt32BE(at + 1);
    out.push({ type: bytes[at], payload: bytes.subarray(at + HEADER_SIZE, at + HEADER_SIZE + length) });
    at += HEADER_SIZE + length;
  }
  return out;
}

t.test('lent chunks: every view holds its lease, control frames are copies, and every lease comes back', async (t) => {
  await holds(
    t,
    'chunks scribbled over as soon as their lease is free: every frame intact, every hold given back',
    fc.asyncProperty(fc.array(frame(300, 40), { maxLength: 10 }), chunkSizes(40), fc.boolean(), async (frames, sizes, paired) => {
      const bytes = await encode(frames);
      const leases: Lease[] = [];
      const chunks = split(bytes, sizes).map((c) => {
        const memory = Buffer.allocUnsafeSlow(c.length);
        c.copy(memory);
        const lease = new Lease(memory, () => memory.fill(0xee));
        lease.hold();
        leases.push(lease);
        return memory;
      });
      const decoder = new FrameDecoder(paired ? { pairWindow: 1 << 20 } : {});
      const got: Frame[] = [];
      decoder.on('data', (f: Frame) => {
        got.push({ type: f.type, payload: Buffer.from(f.payload) });
        Lease.releaseView(f.payload);
      });
      const ended = new Promise((resolve) => decoder.once('end', resolve));
      await run(decoder, chunks);
      await ended;
      if (paired) assert.deepEqual(streamsBetweenControls(got), streamsBetweenControls(frames));
      else assert.deepEqual(normalize(got), normalize(frames));
      assert.deepEqual(leases.map((l) => l.holds), leases.map(() => 0), 'every lease is back');
    }),
    { numRuns: 200 },
  );
});

t.test('an oversized length prefix is one PROTOCOL error and the end, from the header alone', async (t) => {
  await holds(
    t,
    'frames within the limits pass; a header past its limit ends the output with no payload sent',
    fc.asyncProperty(
      fc
        .record({ maxPayload: fc.integer({ min: 0, max: 400 }), maxControlPayload: fc.integer({ min: 0, max: 60 }) })
        .chain((limits) =>
          fc.record({
            limits: fc.constant(limits),
            good: fc.array(frame(limits.maxPayload, limits.maxControlPayload), { maxLength: 4 }),
          }),
        ),
      fc.tuple(frameType, fc.nat()),
      fc.uint8Array({ maxLength: 30 }),
      chunkSizes(20),
      fc.boolean(),
      async ({ limits, good }, [type, over], trailer, sizes, end) => {
        const limit = isStream(type) ? limits.maxPayload : limits.maxControlPayload;
        const length = Math.min(0xffffffff, limit + 1 + over * (over % 3 === 0 ? 1 : 1 << 16));
        const before = await encode(good);
        // When not ending the input, nothing follows the header: the decoder must not wait for payload.
        const bytes = Buffer.concat([before, header(type, length), ...(end ? [Buffer.from(trailer)] : [])]);
        const got = await decode(split(bytes, sizes), limits, end);
        const error = got.pop();
        const message = assertProtocolError(error, `after an oversized ${type} header`);
        assert.ok(message.includes(String(length)), `'${message}' gives the length ${length}`);
        assert.deepEqual(normalize(got), normalize(good));
      },
    ),
    { numRuns: 200 },
  );

  t.test('the default limits', async (t) => {
    for (const [type, limit] of [
      [FrameType.TEXT, MAX_PAYLOAD],
      [FrameType.KEY, MAX_PAYLOAD],
      [FrameType.RESULT, MAX_PAYLOAD],
      [FrameType.HELLO, MAX_CONTROL_PAYLOAD],
      [FrameType.END, MAX_CONTROL_PAYLOAD],
      [FrameType.DONE, MAX_CONTROL_PAYLOAD],
      [FrameType.ERROR, MAX_CONTROL_PAYLOAD],
      [0, MAX_CONTROL_PAYLOAD],
      [255, MAX_CONTROL_PAYLOAD],
    ]) {
      t.equal(STREAM_TYPES.has(type), isStream(type), `type ${type} is ${isStream(type) ? '' : 'not '}a stream type`);
      for (const length of [limit + 1, 0xffffffff]) {
        const got = await decode([header(type, length)], {}, false);
        t.equal(got.length, 1, `type ${type}, length ${length}: one frame`);
        t.equal(got[0].type, FrameType.ERROR, `type ${type}, length ${length}: an ERROR frame`);
        t.equal(errorOf(got[0]).code, ErrorCode.PROTOCOL, `type ${type}, length ${length}: PROTOCOL`);
      }
      // At the limit the decoder waits for the payload: nothing comes out, and the output does not end.
      const decoder = new FrameDecoder();
      const out: Frame[] = [];
      let ended = false;
      decoder.on('data', (f: Frame) => out.push(f));
      decoder.on('end', () => (ended = true));
      decoder.write(header(type, limit));
      await settle();
      t.same(out, [], `type ${type} at its limit ${limit}: no frame yet`);
      t.notOk(ended, `type ${type} at its limit ${limit}: still open`);
      decoder.destroy();
    }
  });
});

t.test('a stream that ends inside a frame is a PROTOCOL error', async (t) => {
  await holds(
    t,
    'the whole frames before the cut, then ERROR exactly when the cut is inside a frame',
    fc.asyncProperty(fc.array(frame(100, 20), { minLength: 1, maxLength: 6 }), fc.nat(), chunkSizes(16), async (frames, where, sizes) => {
      const encoded = frames.map(layout);
      const bytes = await encode(frames);
      const cut = where % (bytes.length + 1);
      let whole = 0;
      let offset = 0;
      while (whole < frames.length && offset + encoded[whole].length <= cut) offset += encoded[whole++].length;
      const inside = offset < cut;
      const decoder = new FrameDecoder();
      const got = await feed<Frame>(decoder, split(bytes.subarray(0, cut), sizes));
      if (inside) assertProtocolError(got.pop(), `after a cut at byte ${cut} of ${bytes.length}`);
      assert.equal(decoder.cutShort, inside, 'cutShort says whether the input stopped inside a frame');
      // Of the cut frame, a stream's every byte that came is passed on; a control frame's, nothing.
      const cutFrame = inside ? frames[whole] : null;
      const received = cutFrame && isStream(cutFrame.type) ? cutFrame.payload.subarray(0, Math.max(0, cut - offset - HEADER_SIZE)) : null;
      const want = [...frames.slice(0, whole), ...(received ? [{ type: cutFrame!.type, payload: received }] : [])];
      assert.deepEqual(normalize(got), normalize(want));
    }),
    { numRuns: 200 },
  );
});
