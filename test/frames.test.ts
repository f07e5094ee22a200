// Properties of the length-prefix encoding (encodeFrame, frameHeader) and FrameDecoder.
import assert from 'node:assert/strict';
import t from 'tap';
import fc from 'fast-check';
import { ErrorCode, FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD, MAX_PAYLOAD, STREAM_TYPES, type Frame } from '../src/protocol/frames.js';
import { FrameDecoder, type FrameDecoderOptions } from './helpers/frame-decoder.js';
import { encodeFrame, frameHeader } from '../src/streams/frame-encoder.js';
import { chunkSizes, errorOf, feed, holds, plain, settle, split } from './helpers/streams.js';

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
 * Checks partial-mode output against the frames sent: control frames whole; each
 * TEXT/KEY/RESULT payload as one or more non-empty parts of its type that concatenate to
 * it (an empty one as a single empty part). Returns the output frames left over.
 */
function matchPartial(sent: readonly Frame[], got: readonly Frame[]): Frame[] {
  let at = 0;
  for (const [i, f] of sent.entries()) {
    if (!isStream(f.type) || f.payload.length === 0) {
      assert.ok(at < got.length, `frame ${i} is missing`);
      assert.deepEqual(plain([got[at++]]), plain([f]), `frame ${i}`);
      continue;
    }
    const parts: Buffer[] = [];
    let n = 0;
    while (n < f.payload.length) {
      assert.ok(at < got.length, `frame ${i} is missing parts after ${n} bytes`);
      const part = got[at++];
      assert.equal(part.type, f.type, `a part of frame ${i}`);
      assert.ok(part.payload.length > 0, `an empty part of frame ${i}`);
      parts.push(part.payload);
      n += part.payload.length;
    }
    assert.equal(Buffer.concat(parts).toString('hex'), f.payload.toString('hex'), `the parts of frame ${i}`);
  }
  return got.slice(at);
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

t.test('decode(encode(frames)) = frames under any re-chunking', async (t) => {
  await holds(
    t,
    'whole mode: the same frames, whatever the chunks, 1-byte chunks included',
    fc.asyncProperty(fc.array(frame(300, 40), { maxLength: 10 }), chunkSizes(40), async (frames, sizes) => {
      const bytes = await encode(frames);
      for (const chunks of [[bytes], split(bytes, sizes), split(bytes, [1])]) {
        assert.deepEqual(plain(await decode(chunks)), plain(frames));
      }
    }),
    { numRuns: 150 },
  );

  await holds(
    t,
    'partial mode: the parts of each data frame concatenate to its payload; control frames arrive whole',
    fc.asyncProperty(fc.array(frame(300, 40), { maxLength: 10 }), chunkSizes(40), async (frames, sizes) => {
      const bytes = await encode(frames);
      for (const chunks of [[bytes], split(bytes, sizes), split(bytes, [1])]) {
        const left = matchPartial(frames, await decode(chunks, { partial: true }));
        assert.deepEqual(plain(left), [], 'frames beyond those sent');
      }
    }),
    { numRuns: 150 },
  );

  t.test('large frames: around the encoder\'s 16 KiB copy threshold, and at MAX_PAYLOAD', async (t) => {
    const sizes = [16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 100_000, MAX_PAYLOAD];
    const frames = sizes.map((n, i) => ({
      type: [FrameType.TEXT, FrameType.KEY, FrameType.RESULT][i % 3],
      payload: Buffer.alloc(n, i + 65),
    }));
    const bytes = await encode(frames);
    t.ok(bytes.equals(Buffer.concat(frames.map(layout))), 'encoded as the layout says');
    for (const chunk of [bytes.length, 4093, 65536]) {
      t.same(plain(await decode(split(bytes, [chunk]))), plain(frames), `whole mode, ${chunk}-byte chunks`);
      t.same(plain(matchPartial(frames, await decode(split(bytes, [chunk]), { partial: true }))), [], `partial mode, ${chunk}-byte chunks`);
    }
  });
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
      fc.boolean(),
      fc.tuple(frameType, fc.nat()),
      fc.uint8Array({ maxLength: 30 }),
      chunkSizes(20),
      fc.boolean(),
      async ({ limits, good }, partial, [type, over], trailer, sizes, end) => {
        const limit = isStream(type) ? limits.maxPayload : limits.maxControlPayload;
        const length = Math.min(0xffffffff, limit + 1 + over * (over % 3 === 0 ? 1 : 1 << 16));
        const before = await encode(good);
        // When not ending the input, nothing follows the header: the decoder must not wait for payload.
        const bytes = Buffer.concat([before, header(type, length), ...(end ? [Buffer.from(trailer)] : [])]);
        const got = await decode(split(bytes, sizes), { ...limits, partial }, end);
        const error = got.pop();
        const message = assertProtocolError(error, `after an oversized ${type} header`);
        assert.ok(message.includes(String(length)), `'${message}' gives the length ${length}`);
        if (partial) assert.deepEqual(plain(matchPartial(good, got)), []);
        else assert.deepEqual(plain(got), plain(good));
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
    fc.asyncProperty(fc.array(frame(100, 20), { minLength: 1, maxLength: 6 }), fc.nat(), chunkSizes(16), fc.boolean(), async (frames, where, sizes, partial) => {
      const encoded = frames.map(layout);
      const bytes = await encode(frames);
      const cut = where % (bytes.length + 1);
      let whole = 0;
      let offset = 0;
      while (whole < frames.length && offset + encoded[whole].length <= cut) offset += encoded[whole++].length;
      const inside = offset < cut;
      const got = await decode(split(bytes.subarray(0, cut), sizes), { partial });
      if (inside) assertProtocolError(got.pop(), `after a cut at byte ${cut} of ${bytes.length}`);
      if (partial) {
        const left = matchPartial(frames.slice(0, whole), got);
        // Parts of the cut frame's payload may have been passed on before the end.
        if (inside) {
          for (const f of left) assert.equal(f.type, frames[whole].type, 'a part of the cut frame');
          const sent = Buffer.concat(left.map((f) => f.payload)).toString('hex');
          const payload = frames[whole].payload.toString('hex');
          assert.ok(payload.startsWith(sent) && (sent.length < payload.length || payload === ''), 'the parts passed on are less than the cut payload');
        } else {
          assert.deepEqual(plain(left), []);
        }
      } else {
        assert.deepEqual(plain(got), plain(frames.slice(0, whole)));
      }
    }),
    { numRuns: 200 },
  );
});
