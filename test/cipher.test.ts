// Properties of the cipher stream (src/streams/cipher.ts), on payloads of its own and on lent ones as the server's pipeline gives it, checked against a model written here with mod-27 arithmetic.
import assert from 'node:assert/strict';
import t from 'tap';
import fc from 'fast-check';
import { ALPHABET, cipherTable, describeByte, SIMD_FROM, type Direction } from '../src/cipher/alphabet.js';
import { CIPHER_WINDOW, ErrorCode, FrameType, errorFrame, type Frame } from '../src/protocol/frames.js';
import { REGION } from '../src/simd/kernels.js';
import { Lease } from '../src/memory/lease.js';
import { Cipher } from '../src/streams/cipher.js';
import {
  ABC,
  chunkSizes,
  errorOf,
  holds,
  interleave,
  nonSymbolByte,
  run,
  seededSymbols,
  settle,
  split,
  symbolBytes,
  symbolValue,
  SYMBOL_VALUE,
  within,
  writeAll,
} from './helpers/streams.js';

// ---------------------------------------------------------------------------------------------
// The model

/** The spec's cipher, symbol by symbol, over the first text.length symbols of the key. */
function model(direction: Direction, text: Buffer, key: Buffer): Buffer {
  assert.ok(key.length >= text.length, 'the model needs a key at least as long as the text');
  const out = Buffer.alloc(text.length);
  for (let i = 0; i < text.length; i++) {
    const p = SYMBOL_VALUE[text[i]];
    const k = SYMBOL_VALUE[key[i]];
    assert.ok(p >= 0 && k >= 0, 'the model takes symbols only');
    const c = direction === 'encrypt' ? p + k : p - k;
    out[i] = ABC.charCodeAt(((c % 27) + 27) % 27);
  }
  return out;
}

const dataFrame = (type: number, payload: Buffer): Frame => ({ type, payload });
const END: Frame = { type: FrameType.END, payload: Buffer.alloc(0) };

type Outcome = { result: Buffer; end: { type: 'DONE' } | { type: 'ERROR'; code: number; ahead?: 'text' | 'key' } };

/**
 * What the cipher must answer to a sequence of TEXT and KEY frames of symbols followed by
 * END: every symbol whose text and key bytes have both arrived, then DONE — or KEY_LAG as
 * soon as one stream leads the other by more than `window` bytes, or KEY_SHORT at END
 * when text is left unmatched.
 */
function expected(direction: Direction, frames: readonly Frame[], window: number): Outcome {
  const text = Buffer.concat(frames.filter((f) => f.type === FrameType.TEXT).map((f) => f.payload));
  const key = Buffer.concat(frames.filter((f) => f.type === FrameType.KEY).map((f) => f.payload));
  let textSent = 0;
  let keySent = 0;
  const matched = () => model(direction, text.subarray(0, Math.min(textSent, keySent)), key);
  for (const frame of frames) {
    if (frame.type === FrameType.TEXT) textSent += frame.payload.length;
    else keySent += frame.payload.length;
    const lead = textSent - keySent;
    if (Math.abs(lead) > window) {
      return { result: matched(), end: { type: 'ERROR', code: ErrorCode.KEY_LAG, ahead: lead > 0 ? 'text' : 'key' } };
    }
  }
  if (textSent > keySent) return { result: matched(), end: { type: 'ERROR', code: ErrorCode.KEY_SHORT } };
  return { result: matched(), end: { type: 'DONE' } };
}

/**
 * Runs a cipher over the frames and splits its output into the RESULT bytes and the last
 * frame. Every run is made twice: on payloads of the test's own, and as the server's
 * pipeline runs it, on lent payloads, which must come out the same.
 */
async function cipher(direction: Direction, frames: readonly Frame[], window = CIPHER_WINDOW, end = true, overwrite = false) {
  // First: with `overwrite` the cipher writes over the caller's payloads; asServed copies them.
  const served = await asServed(direction, frames, window, end);
  const out = await run<Frame>(new Cipher(direction, { window, overwrite }), frames, end);
  assert.deepEqual(served.map(summary), out.map(summary), 'the server\'s way (lent payloads) gives the same frames');
  return resultAndLast(out);
}

const summary = (frame: Frame): string => `${frame.type}:${frame.payload.toString('latin1')}`;

/**
 * The server's way (src/server/job.ts): each TEXT and KEY payload lies in a buffer lent
 * to the pipeline (src/memory/lease.ts), written over with the result, and read into again
 * as soon as its lease is free, which this scribbles over (0xff, not a symbol) at that
 * moment. Each RESULT is read, then given back, as the socket's sink would: a lease given
 * back too early, or bytes of the input kept without a hold, show as wrong symbols.
 */
async function asServed(direction: Direction, frames: readonly Frame[], window: number, end: boolean): Promise<Frame[]> {
  const stream = new Cipher(direction, { window, overwrite: true });
  const out: Frame[] = [];
  stream.on('data', (f: Frame) => {
    out.push({ type: f.type, payload: Buffer.from(f.payload) });
    if (f.type === FrameType.RESULT) Lease.releaseView(f.payload);
  });
  const finished = new Promise<void>((resolve, reject) => stream.once('end', resolve).once('error', reject));
  const leases: Lease[] = [];
  for (const frame of frames) {
    const lent = frame.type === FrameType.TEXT || frame.type === FrameType.KEY;
    let payload = frame.payload;
    if (lent) {
      const memory = Buffer.allocUnsafeSlow(Math.max(1, payload.length));
      const lease = new Lease(memory, () => memory.fill(0xff));
      leases.push(lease);
      payload = memory.subarray(0, payload.length);
      frame.payload.copy(payload);
      lease.hold();
    }
    await writeAll(stream, [{ type: frame.type, payload }]);
  }
  if (end) stream.end();
  else stream.destroy();
  if (end) await finished;
  else await settle();
  assert.deepEqual(leases.map((l) => l.holds), leases.map(() => 0), 'every lease is back once the output has been read');
  return out;
}

function resultAndLast(out: Frame[]) {
  assert.ok(out.length > 0, 'the cipher emitted nothing at all');
  const last = out[out.length - 1];
  const body = out.slice(0, -1);
  for (const f of body) assert.equal(f.type, FrameType.RESULT, `frame of type ${f.type} before the last frame`);
  return { result: Buffer.concat(body.map((f) => f.payload)), last };
}

/** Asserts that a cipher run ended as the model says. */
function assertOutcome(got: { result: Buffer; last: Frame }, want: Outcome, window: number): void {
  assert.equal(got.result.toString('latin1'), want.result.toString('latin1'));
  if (want.end.type === 'DONE') {
    assert.equal(got.last.type, FrameType.DONE, `ended with ${JSON.stringify(got.last.type === FrameType.ERROR ? errorOf(got.last) : got.last.type)}`);
    assert.equal(got.last.payload.length, 0);
    return;
  }
  assert.equal(got.last.type, FrameType.ERROR);
  const { code, message } = errorOf(got.last);
  assert.equal(code, want.end.code, message);
  if (want.end.ahead) assert.match(message, new RegExp(`\\b${want.end.ahead} ran more than ${window} bytes ahead`));
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** Aligned text and key symbol values, and extra key symbols past the end of the text. */
const pad = (maxText: number, maxExtra: number) =>
  fc.record({
    pairs: fc.array(fc.tuple(symbolValue(), symbolValue()), { maxLength: maxText }),
    extra: fc.array(symbolValue(), { maxLength: maxExtra }),
  }).map(({ pairs, extra }) => ({
    text: symbolBytes(pairs.map((p) => p[0])),
    key: symbolBytes([...pairs.map((p) => p[1]), ...extra]),
  }));

/** How a job is cut into frames: chunk sizes for the text and the key, and the order of the frames. */
const cutting = (maxChunk: number) =>
  fc.record({
    textSizes: chunkSizes(maxChunk),
    keySizes: chunkSizes(maxChunk),
    order: fc.array(fc.boolean(), { minLength: 1, maxLength: 32 }),
  });

type Cutting = { textSizes: number[]; keySizes: number[]; order: boolean[] };
const frames = (text: Buffer, key: Buffer, c: Cutting, window = Infinity): Frame[] =>
  interleave(split(text, c.textSizes), split(key, c.keySizes), c.order, window);

const direction = fc.constantFrom<Direction>('encrypt', 'decrypt');

// ---------------------------------------------------------------------------------------------
// Properties

t.test('the alphabet the tests spell out is the one the sources use', async (t) => {
  t.equal(ALPHABET, ABC);
});

t.test('the cipher table is the mod-27 model for every pair of bytes', async (t) => {
  for (const dir of ['encrypt', 'decrypt'] as const) {
    const table = cipherTable(dir);
    let wrong = 0;
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b++) {
        const both = SYMBOL_VALUE[a] >= 0 && SYMBOL_VALUE[b] >= 0;
        const want = both ? model(dir, Buffer.from([a]), Buffer.from([b]))[0] : 0;
        if (table[(a << 8) | b] !== want) wrong++;
      }
    }
    t.equal(wrong, 0, `${dir}: entries that differ from the model (0 where either byte is not a symbol)`);
  }
});

t.test("the spec's worked example", async (t) => {
  const text = Buffer.from('AAAZ ');
  const key = Buffer.from('BZ  A');
  for (const [dir, want] of [
    ['encrypt', 'BZ Y '],
    ['decrypt', ' CB  '],
  ] as const) {
    const got = await cipher(dir, [dataFrame(FrameType.TEXT, text), dataFrame(FrameType.KEY, key), END]);
    t.equal(got.result.toString(), want, dir);
    t.equal(got.last.type, FrameType.DONE, `${dir} ends with DONE`);
    t.equal(model(dir, text, key).toString(), want, `the model agrees for ${dir}`);
  }
});

t.test('encrypt and decrypt follow the mod-27 model, and decrypt undoes encrypt', async (t) => {
  await holds(
    t,
    'decrypt(encrypt(t, k), k) = t, both as the model computes',
    fc.asyncProperty(pad(300, 40), cutting(48), cutting(48), async ({ text, key }, c1, c2) => {
      const enc = await cipher('encrypt', [...frames(text, key, c1), END]);
      assertOutcome(enc, { result: model('encrypt', text, key), end: { type: 'DONE' } }, CIPHER_WINDOW);
      const dec = await cipher('decrypt', [...frames(enc.result, key, c2), END]);
      assertOutcome(dec, { result: model('decrypt', enc.result, key), end: { type: 'DONE' } }, CIPHER_WINDOW);
      assert.equal(dec.result.toString('latin1'), text.toString('latin1'));
    }),
    { numRuns: 150 },
  );
});

t.test('the output does not depend on how text and key are cut into frames', async (t) => {
  await holds(
    t,
    'two cuttings and 1-byte chunks give the same symbols',
    fc.asyncProperty(direction, pad(200, 20), cutting(64), cutting(64), async (dir, { text, key }, c1, c2) => {
      const a = await cipher(dir, [...frames(text, key, c1), END]);
      const b = await cipher(dir, [...frames(text, key, c2), END]);
      const ones = await cipher(dir, [...frames(text, key, { textSizes: [1], keySizes: [1], order: c1.order }), END]);
      // One whole frame each, text first and key first.
      const textFirst = await cipher(dir, [dataFrame(FrameType.TEXT, text), dataFrame(FrameType.KEY, key), END]);
      const keyFirst = await cipher(dir, [dataFrame(FrameType.KEY, key), dataFrame(FrameType.TEXT, text), END]);
      const want = model(dir, text, key).toString('latin1');
      for (const got of [a, b, ones, textFirst, keyFirst]) {
        assert.equal(got.last.type, FrameType.DONE);
        assert.equal(got.result.toString('latin1'), want);
      }
    }),
    { numRuns: 120 },
  );
});

t.test('any order of frames within a small window gives the full result', async (t) => {
  await holds(
    t,
    'neither stream more than `window` ahead: every symbol, then DONE',
    fc.asyncProperty(
      direction,
      fc.integer({ min: 1, max: 24 }),
      pad(150, 24),
      cutting(24),
      async (dir, window, { text, key }, c) => {
        // Chunks no longer than the window, and no more spare key than the window holds.
        const sizes = (s: number[]) => s.map((n) => 1 + ((n - 1) % window));
        const k = key.subarray(0, text.length + Math.min(window, key.length - text.length));
        const fs = frames(text, k, { ...c, textSizes: sizes(c.textSizes), keySizes: sizes(c.keySizes) }, window);
        const want = expected(dir, [...fs], window);
        assert.equal(want.end.type, 'DONE', 'the test built an order within the window');
        assertOutcome(await cipher(dir, [...fs, END], window), want, window);
      },
    ),
    { numRuns: 150 },
  );
});

t.test('the bytes held unmatched are bounded by the window', async (t) => {
  await holds(
    t,
    'any order of frames: KEY_LAG naming the stream that ran ahead, exactly when one does',
    fc.asyncProperty(
      direction,
      fc.integer({ min: 1, max: 40 }),
      pad(120, 60),
      cutting(32),
      async (dir, window, { text, key }, c) => {
        const fs = frames(text, key, c);
        assertOutcome(await cipher(dir, [...fs, END], window), expected(dir, fs, window), window);
      },
    ),
    { numRuns: 200 },
  );

  await holds(
    t,
    'text exactly `window` ahead works; one byte more is KEY_LAG at once, before any key',
    fc.asyncProperty(direction, fc.integer({ min: 1, max: 200 }), chunkSizes(50), async (dir, window, sizes) => {
      const text = symbolBytes(Array.from({ length: window }, (_, i) => (i * 7) % 27));
      const key = symbolBytes(Array.from({ length: window }, (_, i) => (i * 5 + 3) % 27));
      const within = [...split(text, sizes).map((p) => dataFrame(FrameType.TEXT, p)), dataFrame(FrameType.KEY, key), END];
      assertOutcome(await cipher(dir, within, window), { result: model(dir, text, key), end: { type: 'DONE' } }, window);

      // One more text byte, and the stream must end without being given END or any key.
      const over = [...within.slice(0, -2), dataFrame(FrameType.TEXT, Buffer.from('A'))];
      const got = await cipher(dir, over, window, false);
      assertOutcome(got, { result: Buffer.alloc(0), end: { type: 'ERROR', code: ErrorCode.KEY_LAG, ahead: 'text' } }, window);
    }),
    { numRuns: 60 },
  );

  t.test('the default window', async (t) => {
    const text = Buffer.alloc(CIPHER_WINDOW + 1, 'Q');
    const got = await cipher('encrypt', [dataFrame(FrameType.TEXT, text)], undefined, false);
    t.equal(got.last.type, FrameType.ERROR, 'text one byte past CIPHER_WINDOW ahead is an error');
    t.equal(errorOf(got.last).code, ErrorCode.KEY_LAG);
    t.equal(got.result.length, 0);
  });
});

t.test('output is sent as soon as both streams have the bytes', async (t) => {
  await holds(
    t,
    'after each frame the cipher has sent min(text, key) symbols',
    fc.asyncProperty(direction, pad(120, 10), cutting(20), async (dir, { text, key }, c) => {
      const stream = new Cipher(dir);
      const got: Buffer[] = [];
      stream.on('data', (f: Frame) => got.push(f.payload));
      let textSent = 0;
      let keySent = 0;
      for (const frame of frames(text, key, c)) {
        await writeAll(stream, [frame]);
        await settle();
        if (frame.type === FrameType.TEXT) textSent += frame.payload.length;
        else keySent += frame.payload.length;
        assert.equal(Buffer.concat(got).length, Math.min(textSent, keySent));
      }
      stream.end(END);
    }),
    { numRuns: 80 },
  );
});

t.test('a bad byte in text or key is BAD_TEXT or BAD_KEY at its 1-based symbol', async (t) => {
  await holds(
    t,
    'the first bad symbol is named, text before key at the same symbol; nothing follows the ERROR',
    fc.asyncProperty(
      direction,
      pad(100, 10).filter(({ text }) => text.length > 0),
      fc.option(fc.tuple(fc.nat(), nonSymbolByte()), { nil: undefined }),
      fc.option(fc.tuple(fc.nat(), nonSymbolByte()), { nil: undefined }),
      cutting(16),
      async (dir, { text, key }, badText, badKey, c) => {
        fc.pre(badText !== undefined || badKey !== undefined);
        const cleanText = Buffer.from(text);
        const cleanKey = Buffer.from(key);
        text = Buffer.from(text);
        key = Buffer.from(key);
        const at = { text: Infinity, key: Infinity };
        if (badText) {
          at.text = badText[0] % text.length;
          text[at.text] = badText[1];
        }
        if (badKey) {
          at.key = badKey[0] % text.length; // within the key's first N symbols, the ones used
          key[at.key] = badKey[1];
        }
        const first = Math.min(at.text, at.key);
        const isText = at.text <= at.key;
        const byte = isText ? text[first] : key[first];
        const got = await cipher(dir, [...frames(text, key, c), END]);
        assert.equal(got.last.type, FrameType.ERROR);
        const { code, message } = errorOf(got.last);
        assert.equal(code, isText ? ErrorCode.BAD_TEXT : ErrorCode.BAD_KEY, message);
        assert.match(message, new RegExp(`in the ${isText ? 'text' : 'key'} at symbol ${first + 1}$`));
        assert.ok(message.includes(describeByte(byte)), `${message} names ${describeByte(byte)}`);
        // What came before the ERROR is correct and stops short of the bad symbol.
        const before = model(dir, cleanText.subarray(0, first), cleanKey);
        assert.ok(got.result.length <= first, `${got.result.length} symbols sent before a bad symbol ${first + 1}`);
        assert.equal(got.result.toString('latin1'), before.subarray(0, got.result.length).toString('latin1'));
      },
    ),
    { numRuns: 200 },
  );

  await holds(
    t,
    'a bad byte in the key past the end of the text is never used',
    fc.asyncProperty(direction, pad(60, 0), nonSymbolByte(), fc.nat(), cutting(16), async (dir, { text, key }, bad, where, c) => {
      const extra = 1 + (where % 10);
      const longKey = Buffer.concat([key, Buffer.alloc(extra, 'K')]);
      longKey[text.length + (where % extra)] = bad;
      const got = await cipher(dir, [...frames(text, longKey, c), END]);
      assertOutcome(got, { result: model(dir, text, key), end: { type: 'DONE' } }, CIPHER_WINDOW);
    }),
    { numRuns: 60 },
  );
});

/** 'a' or 'an' before a number below 1000, as it is spoken; spelled out here, not taken from src/format/words.ts. */
function articleOf(n: number): 'a' | 'an' {
  assert.ok(n < 1000);
  return n === 8 || n === 11 || n === 18 || (n >= 80 && n < 90) || (n >= 800 && n < 900) ? 'an' : 'a';
}

t.test('END with text left unmatched is KEY_SHORT', async (t) => {
  await holds(
    t,
    'every matched symbol is sent, then KEY_SHORT counting key and text',
    fc.asyncProperty(
      direction,
      pad(120, 0).filter(({ text }) => text.length > 0),
      fc.nat(),
      cutting(32),
      async (dir, { text, key }, cut, c) => {
        const short = key.subarray(0, cut % text.length); // 0 .. N-1 key symbols
        const got = await cipher(dir, [...frames(text, short, c), END]);
        assertOutcome(got, { result: model(dir, text.subarray(0, short.length), short), end: { type: 'ERROR', code: ErrorCode.KEY_SHORT } }, CIPHER_WINDOW);
        const noun = short.length === 1 ? 'symbol' : 'symbols';
        assert.equal(errorOf(got.last).message, `the key is too short: ${short.length} ${noun} for ${articleOf(text.length)} ${text.length}-symbol text`);
      },
    ),
    { numRuns: 150 },
  );
});

t.test('frames out of place', async (t) => {
  const notCipherInput = fc.integer({ min: 0, max: 255 }).filter((ty) => ![FrameType.TEXT, FrameType.KEY, FrameType.END, FrameType.ERROR].includes(ty as never));

  await holds(
    t,
    'a frame of any other type is a PROTOCOL error, and the end',
    fc.asyncProperty(
      direction,
      pad(60, 5),
      cutting(16),
      fc.nat(),
      notCipherInput,
      fc.uint8Array({ maxLength: 8 }),
      async (dir, { text, key }, c, where, type, payload) => {
        const fs = frames(text, key, c);
        const at = where % (fs.length + 1);
        const input = [...fs.slice(0, at), { type, payload: Buffer.from(payload) }, ...fs.slice(at), END];
        const got = await cipher(dir, input);
        assert.equal(got.last.type, FrameType.ERROR);
        const { code, message } = errorOf(got.last);
        assert.equal(code, ErrorCode.PROTOCOL, message);
        assert.match(message, new RegExp(`\\b${type}\\b`));
        // Only what was matched before the stray frame was sent.
        const want = expected(dir, fs.slice(0, at), CIPHER_WINDOW);
        assert.equal(got.result.toString('latin1'), want.result.toString('latin1'));
      },
    ),
    { numRuns: 120 },
  );

  await holds(
    t,
    'input ending without END is a PROTOCOL error',
    fc.asyncProperty(direction, pad(60, 5), cutting(16), async (dir, { text, key }, c) => {
      const fs = frames(text, key, c);
      const got = await cipher(dir, fs);
      assert.equal(got.last.type, FrameType.ERROR);
      assert.equal(errorOf(got.last).code, ErrorCode.PROTOCOL);
      assert.equal(got.result.toString('latin1'), expected(dir, fs, CIPHER_WINDOW).result.toString('latin1'));
    }),
    { numRuns: 60 },
  );

  await holds(
    t,
    'an ERROR from upstream passes through unchanged and ends the output; later input is dropped',
    fc.asyncProperty(direction, pad(40, 5), cutting(8), fc.nat(), fc.integer({ min: 1, max: 9 }), async (dir, { text, key }, c, where, code) => {
      const fs = frames(text, key, c);
      const at = where % (fs.length + 1);
      const upstream = errorFrame(code as ErrorCode, 'from upstream');
      const got = await cipher(dir, [...fs.slice(0, at), upstream, ...fs.slice(at), END]);
      assert.deepEqual(errorOf(got.last), { code, message: 'from upstream' });
      assert.equal(got.result.toString('latin1'), expected(dir, fs.slice(0, at), CIPHER_WINDOW).result.toString('latin1'));
    }),
    { numRuns: 60 },
  );

  await holds(
    t,
    'frames after END, or after a fault, are dropped quietly: nothing more comes out, and no stream error',
    fc.asyncProperty(
      direction,
      pad(40, 5),
      cutting(8),
      fc.constantFrom('END', 'bad text', 'stray frame'),
      fc.array(fc.tuple(fc.constantFrom(FrameType.TEXT, FrameType.KEY, FrameType.END, 99), fc.uint8Array({ maxLength: 6 })), {
        minLength: 1,
        maxLength: 6,
      }),
      async (dir, { text, key }, c, stop, after) => {
        const fs = frames(text, key, c);
        const stopper = {
          END: END,
          'bad text': dataFrame(FrameType.TEXT, Buffer.from('a')),
          'stray frame': { type: FrameType.HELLO, payload: Buffer.alloc(2) },
        }[stop];
        // Key enough for the bad text byte to be matched at once.
        const input = [...fs, ...(stop === 'bad text' ? [dataFrame(FrameType.KEY, Buffer.from('A'))] : []), stopper];
        const stream = new Cipher(dir);
        const errors: Error[] = [];
        stream.on('error', (err) => errors.push(err));
        const out: Frame[] = [];
        stream.on('data', (f: Frame) => out.push(f));
        const finished = new Promise((resolve) => stream.once('finish', resolve));
        await writeAll(stream, input);
        const before = out.length;
        const last = out[before - 1];
        await writeAll(stream, after.map(([type, payload]) => ({ type, payload: Buffer.from(payload) })));
        stream.end();
        await within(finished, 5_000, 'the cipher taking its input');
        await settle();
        assert.deepEqual(errors.map(String), []);
        assert.equal(out.length, before, 'frames came out after the last one');
        assert.ok(stream.readableEnded, 'the output ended');
        if (stop === 'END') assert.equal(last.type, FrameType.DONE);
        else assert.equal(errorOf(last).code, stop === 'bad text' ? ErrorCode.BAD_TEXT : ErrorCode.PROTOCOL);
      },
    ),
    { numRuns: 80 },
  );
});

t.test('long stretches (the SIMD kernels, from SIMD_FROM bytes, in REGION pieces)', async (t) => {
  const WIDE = 4 * REGION; // a window that lets a whole stretch of text wait for its key
  /** Lengths either side of the thresholds where the cipher changes how it works. */
  const length = fc.oneof(
    fc.integer({ min: SIMD_FROM - 2, max: SIMD_FROM + 2 }),
    fc.integer({ min: SIMD_FROM, max: 40_000 }),
    fc.integer({ min: REGION - 17, max: REGION + 17 }),
    fc.integer({ min: REGION, max: 2 * REGION + 40 }),
  );
  /** Cuttings into big pieces, sometimes alternating with small ones (never only small: too many frames). */
  const bigSizes = fc
    .tuple(fc.array(fc.integer({ min: SIMD_FROM, max: 3 * REGION }), { minLength: 1, maxLength: 3 }), fc.option(fc.integer({ min: 1, max: 64 })))
    .map(([big, small]) => (small === null ? big : big.flatMap((b) => [b, small])));
  const bigCutting = fc.record({ textSizes: bigSizes, keySizes: bigSizes, order: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }) });

  await holds(
    t,
    'the model, whole or cut, with and without writing over the payloads; decrypt undoes encrypt',
    fc.asyncProperty(direction, length, fc.integer(), fc.integer(), fc.boolean(), bigCutting, async (dir, n, ts, ks, overwrite, c) => {
      const text = seededSymbols(ts, n);
      const key = seededSymbols(ks, n + (ks & 7));
      const want = model(dir, text, key).toString('latin1');
      const textCopy = Buffer.from(text);
      const keyCopy = Buffer.from(key);
      // Fresh copies each time: with `overwrite` the cipher may write over text or key.
      const whole = () => [dataFrame(FrameType.TEXT, Buffer.from(text)), dataFrame(FrameType.KEY, Buffer.from(key)), END];
      const cut = () => [...frames(Buffer.from(text), Buffer.from(key), c), END];
      for (const fs of [whole(), cut()]) {
        const got = await cipher(dir, fs, WIDE, true, overwrite);
        assert.equal(got.last.type, FrameType.DONE, got.last.type === FrameType.ERROR ? errorOf(got.last).message : '');
        assert.ok(got.result.toString('latin1') === want, `${n} symbols differ from the model`);
      }
      // Without `overwrite` the caller's payloads are left alone, whichever comes first.
      const keyFirst = [dataFrame(FrameType.KEY, key), dataFrame(FrameType.TEXT, text), END];
      await cipher(dir, [...frames(text, key, c), END], WIDE);
      await cipher(dir, keyFirst, WIDE);
      assert.ok(text.equals(textCopy), 'the text was written over without overwrite');
      assert.ok(key.equals(keyCopy), 'the key was written over without overwrite');
      // And back.
      const other = dir === 'encrypt' ? 'decrypt' : 'encrypt';
      const back = await cipher(other, [dataFrame(FrameType.TEXT, Buffer.from(want, 'latin1')), dataFrame(FrameType.KEY, Buffer.from(key)), END], WIDE, true, overwrite);
      assert.ok(back.result.equals(textCopy), 'the inverse does not give the text back');
    }),
    { numRuns: 25 },
  );

  await holds(
    t,
    'a bad byte anywhere in a long stretch is named at its symbol, with and without writing over the payloads',
    fc.asyncProperty(
      direction,
      length,
      fc.integer(),
      fc.boolean(),
      fc.option(fc.tuple(fc.nat(), nonSymbolByte()), { nil: undefined }),
      fc.option(fc.tuple(fc.nat(), nonSymbolByte()), { nil: undefined }),
      fc.constantFrom('whole', 'key first', 'halves'),
      async (dir, n, seed, overwrite, badText, badKey, how) => {
        fc.pre(badText !== undefined || badKey !== undefined);
        const text = seededSymbols(seed, n);
        const key = seededSymbols(~seed, n);
        // Positions spread over the whole stretch, often right at a REGION boundary.
        const place = (r: number) => (r % 4 === 0 ? Math.min(n - 1, REGION - 1 + (r % 3)) : r % n);
        const at = { text: Infinity, key: Infinity };
        if (badText) text[(at.text = place(badText[0]))] = badText[1];
        if (badKey) key[(at.key = place(badKey[0]))] = badKey[1];
        const first = Math.min(at.text, at.key);
        const isText = at.text <= at.key;
        const byte = isText ? text[first] : key[first];
        const fs =
          how === 'whole'
            ? [dataFrame(FrameType.TEXT, text), dataFrame(FrameType.KEY, key)]
            : how === 'key first'
              ? [dataFrame(FrameType.KEY, key), dataFrame(FrameType.TEXT, text)]
              : [
                  dataFrame(FrameType.TEXT, text.subarray(0, n >> 1)),
                  dataFrame(FrameType.KEY, key.subarray(0, n >> 2)),
                  dataFrame(FrameType.KEY, key.subarray(n >> 2)),
                  dataFrame(FrameType.TEXT, text.subarray(n >> 1)),
                ];
        const got = await cipher(dir, [...fs, END], WIDE, true, overwrite);
        assert.equal(got.last.type, FrameType.ERROR);
        const { code, message } = errorOf(got.last);
        assert.equal(code, isText ? ErrorCode.BAD_TEXT : ErrorCode.BAD_KEY, message);
        assert.match(message, new RegExp(`in the ${isText ? 'text' : 'key'} at symbol ${first + 1}$`));
        assert.ok(message.includes(describeByte(byte)), `${message} names ${describeByte(byte)}`);
        assert.ok(got.result.length <= first, `${got.result.length} symbols sent before a bad symbol ${first + 1}`);
      },
    ),
    { numRuns: 40 },
  );
});

t.test('linear in the input however it is cut (no work per waiting piece, no frame per waiting piece)', async (t) => {
  /**
   * N one-byte frames of one stream, then the other stream in one frame: the waiting
   * bytes must not be N separate pieces (a queue of N pieces costs O(N) to walk and,
   * with Array#shift, O(N²)), nor come back as N RESULT frames of 6 bytes per symbol.
   */
  async function oneByteFrames(dir: Direction, n: number, first: 'text' | 'key', overwrite: boolean) {
    const text = seededSymbols(n, n);
    const key = seededSymbols(~n, n);
    const [many, manyType, one, oneType] =
      first === 'key' ? [key, FrameType.KEY, text, FrameType.TEXT] : [text, FrameType.TEXT, key, FrameType.KEY];
    const stream = new Cipher(dir, { overwrite });
    const out: Frame[] = [];
    stream.on('data', (f: Frame) => out.push(f));
    for (let i = 0; i < n; i++) stream.write(dataFrame(manyType, many.subarray(i, i + 1)));
    const held = stream.waitingPieces;
    stream.write(dataFrame(oneType, Buffer.from(one)));
    stream.end(END);
    await within(new Promise((resolve) => stream.once('end', resolve)), 60_000, 'the cipher');
    const results = out.filter((f) => f.type === FrameType.RESULT);
    assert.equal(out[out.length - 1].type, FrameType.DONE);
    assert.equal(Buffer.concat(results.map((f) => f.payload)).toString('latin1'), model(dir, text, key).toString('latin1'));
    return { held, results: results.length };
  }

  for (const dir of ['encrypt', 'decrypt'] as const) {
    for (const first of ['key', 'text'] as const) {
      for (const overwrite of [false, true]) {
        const small = await oneByteFrames(dir, 65536, first, overwrite);
        const large = await oneByteFrames(dir, 4 * 65536, first, overwrite);
        const what = `${dir}, ${first} first in one-byte frames${overwrite ? ', overwriting' : ''}`;
        t.equal(small.results, 1, `${what}: 65536 waiting symbols come back in one RESULT frame`);
        t.equal(large.results, 1, `${what}: 262144 waiting symbols come back in one RESULT frame`);
        // The waiting bytes are copied into one ring: at most two stretches of it, however they were cut.
        t.ok(small.held <= 2, `${what}: 65536 one-byte frames held as ${small.held} pieces`);
        t.ok(large.held <= 2, `${what}: 262144 one-byte frames held as ${large.held} pieces`);
      }
    }
  }
});
