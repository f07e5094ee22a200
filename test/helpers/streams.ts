// Shared helpers for the stream-piece property tests: feeding a stream, collecting what it emits, splitting bytes.
import assert from 'node:assert/strict';
import type { Readable, Writable } from 'node:stream';
import fc from 'fast-check';
import { FrameType, parseError, type Frame } from '../../src/protocol/frames.js';

/** The 27 symbols, spelled out here so that the tests do not lean on src/cipher/alphabet.ts. */
export const ABC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ ';

/** A symbol value 0..26. */
export const symbolValue = (): fc.Arbitrary<number> => fc.integer({ min: 0, max: 26 });

/** Bytes of the given symbol values. */
export function symbolBytes(values: readonly number[]): Buffer {
  return Buffer.from(values.map((v) => ABC.charCodeAt(v)));
}

/** Value 0..26 of each byte that is a symbol, -1 for the others: built from ABC, not from src. */
export const SYMBOL_VALUE: Int8Array = (() => {
  const value = new Int8Array(256).fill(-1);
  for (let i = 0; i < ABC.length; i++) value[ABC.charCodeAt(i)] = i;
  return value;
})();

/**
 * `n` symbols from a seeded xorshift generator: large inputs that are cheap to make and
 * to shrink (fast-check shrinks the seed and the length, not a megabyte of bytes).
 */
export function seededSymbols(seed: number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ABC.charCodeAt((x >>> 0) % 27);
  }
  return out;
}

/** A byte that is not one of the 27 symbols. */
export const nonSymbolByte = (): fc.Arbitrary<number> =>
  fc.integer({ min: 0, max: 255 }).filter((b) => !ABC.includes(String.fromCharCode(b)));

/**
 * Chunk sizes for splitting a buffer: used in turn, cycling. Sizes are at least 1 so
 * that a split always makes progress.
 */
export const chunkSizes = (max = 64): fc.Arbitrary<number[]> =>
  fc.array(fc.integer({ min: 1, max }), { minLength: 1, maxLength: 12 });

/** `buf` cut into consecutive pieces whose sizes are `sizes` in turn, cycling; no piece is empty. */
export function split(buf: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < buf.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]);
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Everything a readable emits until its end; rejects when it errors or takes longer than `timeoutMs`. */
export function collect<T>(readable: Readable, timeoutMs = 5_000): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    const timer = setTimeout(() => reject(new Error(`no end within ${timeoutMs} ms`)), timeoutMs);
    readable.on('data', (item: T) => items.push(item));
    readable.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    readable.once('end', () => {
      clearTimeout(timer);
      resolve(items);
    });
  });
}

/** Writes each item in turn, waiting for each write's callback; errors from the writes reject. */
export async function writeAll(writable: Writable, items: readonly unknown[]): Promise<void> {
  for (const item of items) {
    if (writable.writableEnded || writable.destroyed) return;
    await new Promise<void>((resolve, reject) => {
      writable.write(item, (err) => (err ? reject(err) : resolve()));
    });
  }
}

/**
 * Writes every item at once, without waiting for the stream to take them (it buffers
 * them), then ends it unless `end` is false; returns everything the stream emitted.
 */
export function feed<T>(stream: Readable & Writable, items: readonly unknown[], end = true): Promise<T[]> {
  const output = collect<T>(stream);
  for (const item of items) stream.write(item);
  if (end) stream.end();
  return output;
}

/** Feeds `items` to a duplex stream, optionally ends it, and returns everything it emitted. */
export async function run<T>(stream: Readable & Writable, items: readonly unknown[], end = true): Promise<T[]> {
  const output = collect<T>(stream);
  await writeAll(stream, items);
  if (end) stream.end();
  return output;
}

/** Frames as plain values (payloads in hex), for deep comparison. */
export function plain(frames: readonly Frame[]): { type: number; payload: string }[] {
  return frames.map((f) => ({ type: f.type, payload: f.payload.toString('hex') }));
}

/** The code and message of an ERROR frame's payload. */
export function errorOf(frame: Frame): { code: number; message: string } {
  return parseError(frame.payload);
}

/** The promise, or a rejection naming `what` if it has not settled within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A promise that settles after every callback queued so far (I/O, immediates, ticks) has run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const TIME_LIMIT_MS = 20_000;

/** The part of a tap test that `holds` needs. */
interface Asserter {
  notOk(value: unknown, message: string, extra: Record<string, unknown>): boolean;
}

/**
 * Checks a fast-check property and records the outcome as one tap assertion, which fails
 * with fast-check's report (seed, shrunk counterexample) when the property does not hold.
 */
export async function holds<Ts>(
  t: Asserter,
  name: string,
  property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>,
  params: fc.Parameters<Ts> = {},
): Promise<void> {
  const details = await fc.check(property, {
    numRuns: 100,
    includeErrorInReport: true,
    // Bounds the time a failure spends shrinking. The limit also stops a run that has found
    // nothing, as on a heavily loaded machine: that is not a failure (failing it failed
    // correct code), and the assertion says how many runs it made.
    plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS, { failOnInterrupt: false }) as fc.Plugin<Ts>],
    ...params,
  });
  const cut = details.interrupted && !details.failed ? ` (time limit: ${details.numRuns} runs)` : '';
  t.notOk(details.failed, `${name}${cut}`, details.failed ? { report: fc.defaultReportMessage(details) } : {});
}

/** What ByteQueue and RingQueue have in common: the bytes held, the oldest as one view, taking from the front. */
export interface PieceQueue {
  bytes: number;
  front(): Buffer;
  take(n: number): void;
}

/**
 * Takes up to `count` bytes from the front of `queue`, view by view, each checked against
 * `model` (what the queue should hold, oldest first); returns what the model holds after.
 */
export function takeAgainstModel(queue: PieceQueue, model: Buffer, count: number): Buffer {
  let left = Math.min(count, queue.bytes);
  while (left > 0) {
    const front = queue.front();
    assert.ok(front.length > 0, 'front() is empty while bytes are held');
    const n = Math.min(front.length, left);
    assert.ok(front.subarray(0, n).equals(model.subarray(0, n)), 'the front bytes are the oldest ones');
    queue.take(n);
    model = model.subarray(n);
    left -= n;
  }
  return model;
}

/**
 * Merges the text and key chunks into one frame sequence. `order` says, cycling, whether
 * the next frame is text (true) or key (false); when that choice would let one stream
 * run more than `window` bytes ahead of the other, the other stream goes first instead.
 */
export function interleave(textChunks: Buffer[], keyChunks: Buffer[], order: readonly boolean[], window = Infinity): Frame[] {
  const frames: Frame[] = [];
  let i = 0;
  let j = 0;
  let lead = 0; // text bytes sent minus key bytes sent
  for (let step = 0; i < textChunks.length || j < keyChunks.length; step++) {
    let text = j >= keyChunks.length || (i < textChunks.length && order[step % order.length]);
    if (text && j < keyChunks.length && lead + textChunks[i].length > window) text = false;
    else if (!text && i < textChunks.length && keyChunks[j].length - lead > window) text = true;
    if (text) {
      lead += textChunks[i].length;
      frames.push({ type: FrameType.TEXT, payload: textChunks[i++] });
    } else {
      lead -= keyChunks[j].length;
      frames.push({ type: FrameType.KEY, payload: keyChunks[j++] });
    }
  }
  return frames;
}
