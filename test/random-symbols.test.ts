// Properties of keygen's RandomSymbols readable: the count, the alphabet, the newline, uniformity.
import assert from 'node:assert/strict';
import t from 'tap';
import fc from 'fast-check';
import { randomFillSync } from 'node:crypto';
import { getKernels } from '../src/simd/kernels.js';
import { RandomSymbols, type RandomSource } from '../src/streams/random-symbols.js';
import { ABC, collect, holds } from './helpers/streams.js';

const NEWLINE = 0x0a;

/** Index of the first byte of `buf` that is not one of the 27 symbols, or -1. */
function firstNonSymbol(buf: Buffer): number {
  const ok = new Uint8Array(256);
  for (const ch of ABC) ok[ch.charCodeAt(0)] = 1;
  return buf.findIndex((b) => ok[b] === 0);
}

async function draw(count: number): Promise<Buffer> {
  return Buffer.concat(await collect<Buffer>(new RandomSymbols(count), 20_000));
}

/** Checks a whole keygen output of `count` symbols. */
function assertKey(out: Buffer, count: number): void {
  assert.equal(out.length, count + 1, `${count} symbols and a newline`);
  assert.equal(out[count], NEWLINE, 'ends with a newline');
  const bad = firstNonSymbol(out.subarray(0, count));
  assert.equal(bad, -1, `byte ${bad} (0x${out[bad]?.toString(16)}) is not a symbol`);
}

/** Pearson's chi-square statistic of symbol counts against the uniform distribution. */
function chiSquare(symbols: Iterable<number>): { statistic: number; n: number } {
  const counts = new Array<number>(27).fill(0);
  let n = 0;
  for (const b of symbols) {
    const v = ABC.indexOf(String.fromCharCode(b));
    assert.ok(v >= 0, `byte ${b} is not a symbol`);
    counts[v]++;
    n++;
  }
  const e = n / 27;
  return { statistic: counts.reduce((sum, c) => sum + (c - e) ** 2 / e, 0), n };
}

/** P(X > x) for X chi-square with an even number k of degrees of freedom (closed form). */
function chiSquareTail(x: number, k: number): number {
  let term = 1;
  let sum = 1;
  for (let i = 1; i < k / 2; i++) {
    term *= x / 2 / i;
    sum += term;
  }
  return Math.exp(-x / 2) * sum;
}

/** Critical value for 26 degrees of freedom: a uniform source exceeds it with probability about 2e-7. */
const CRITICAL = 80;

t.test('exactly N symbols and a newline', async (t) => {
  for (const count of [0, 1, 65535, 65536, 65537, 200000]) {
    const out = await draw(count);
    t.equal(out.length, count + 1, `keygen ${count}: ${count + 1} bytes`);
    t.equal(out[count], NEWLINE, `keygen ${count}: the last byte is a newline`);
    t.equal(firstNonSymbol(out.subarray(0, count)), -1, `keygen ${count}: every other byte is a symbol`);
  }

  await holds(
    t,
    'any small N',
    fc.asyncProperty(fc.integer({ min: 0, max: 3000 }), async (count) => assertKey(await draw(count), count)),
    { numRuns: 100 },
  );
});

t.test('a huge count streams: the first chunks come at once and the stream can be dropped', async (t) => {
  const stream = new RandomSymbols(1e10);
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    bytes += chunk.length;
    if (bytes >= 300_000) break;
  }
  t.ok(stream.destroyed, 'breaking off destroys the stream');
  t.ok(
    chunks.every((c) => c.length <= 64 * 1024),
    `chunks of at most 64 KiB (largest ${Math.max(...chunks.map((c) => c.length))})`,
  );
  const all = Buffer.concat(chunks);
  t.equal(firstNonSymbol(all), -1, 'all symbols, no newline');
  // Random bytes used twice would show as a stretch of symbols that comes back; any
  // given 20-symbol stretch recurring by chance in 300 kB has odds below 1e-17.
  const RUN = 20;
  const seen = new Set<string>();
  let repeats = 0;
  for (let i = 0; i + RUN <= all.length; i++) {
    const run = all.toString('latin1', i, i + RUN);
    if (seen.has(run)) repeats++;
    else seen.add(run);
  }
  t.equal(repeats, 0, `no ${RUN}-symbol stretch occurs twice in ${all.length} symbols`);
});

t.test('every symbol is equally likely', async (t) => {
  t.ok(chiSquareTail(CRITICAL, 26) < 1e-6, `the critical value ${CRITICAL} is past p = 1e-6`);
  t.ok(chiSquareTail(CRITICAL, 26) > 1e-8, `the critical value ${CRITICAL} is not absurdly loose`);

  const out = await draw(270_000);
  const { statistic, n } = chiSquare(out.subarray(0, -1));
  t.equal(n, 270_000);
  t.ok(statistic < CRITICAL, `chi-square ${statistic.toFixed(2)} over ${n} symbols is below ${CRITICAL}`);

  // The same check on a modulo-biased source — every byte value taken mod 27, as a
  // keygen without rejection sampling would — must fail, or the check has no teeth.
  const biased: number[] = [];
  for (let round = 0; round < 1056; round++) for (let b = 0; b < 256; b++) biased.push(ABC.charCodeAt(b % 27));
  const bias = chiSquare(biased);
  t.equal(bias.n, 270_336);
  t.ok(bias.statistic > CRITICAL, `chi-square ${bias.statistic.toFixed(2)} of 'byte % 27' is above ${CRITICAL}`);
});

/** A byte generator from a seed (xorshift): two made from one seed give the same bytes. */
function bytesFrom(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) & 0xff;
  };
}

/**
 * A source that hands out one fixed byte stream, call after call, whatever the sizes
 * asked for, and a replay of that stream for the model: what keygen makes of it is known.
 */
function fixedSource(bytes: () => () => number): { source: RandomSource; stream: (n: number) => Uint8Array } {
  const give = bytes();
  const replay = bytes();
  return {
    source: (buf, offset, size) => {
      for (let i = 0; i < size; i++) buf[offset + i] = give();
    },
    stream: (n) => Uint8Array.from({ length: n }, replay),
  };
}

const RESERVE = 64 * 1024;

/**
 * What keygen must write for `count` symbols from a source that gives `stream`, byte b
 * standing for symbol b mod 27 and bytes from 243 up rejected. Each 64 KiB output chunk
 * is drawn from the source; with the SIMD kernel in one draw of the chunk's size, whose
 * rejected places are then filled in order from a reserve the source refills 64 KiB at a
 * time; without it, from that reserve alone, taking the accepted bytes in order.
 */
function expectedKey(count: number, stream: (n: number) => Uint8Array, simd: boolean): Buffer {
  const out = Buffer.alloc(count + 1);
  let reserve: Uint8Array = new Uint8Array(0);
  let at = 0;
  const fromReserve = (): number => {
    for (;;) {
      if (at === reserve.length) {
        reserve = stream(RESERVE);
        at = 0;
      }
      const b = reserve[at++];
      if (b < 243) return ABC.charCodeAt(b % 27);
    }
  };
  for (let done = 0; done < count; ) {
    const n = Math.min(RESERVE, count - done);
    const first = simd ? stream(n) : null;
    for (let i = 0; i < n; i++) out[done + i] = first && first[i] < 243 ? ABC.charCodeAt(first[i] % 27) : fromReserve();
    done += n;
  }
  out[count] = NEWLINE;
  return out;
}

t.test('the output is exactly the mapping of what the random source gives, rejections included', async (t) => {
  t.equal(new RandomSymbols(1).source, randomFillSync, "the default source is node:crypto's randomFillSync");
  const simd = getKernels() !== null;
  t.comment(simd ? 'with the SIMD kernel' : 'with the plain loop (no SIMD kernel)');
  for (const count of [0, 1, 16, 1000, 65535, 65536, 65537, 200_000]) {
    const { source, stream } = fixedSource(() => bytesFrom(count + 7));
    const got = Buffer.concat(await collect<Buffer>(new RandomSymbols(count, source), 20_000));
    const want = expectedKey(count, stream, simd);
    t.ok(got.equals(want), `keygen ${count}: byte for byte what the source's bytes map to`);
  }
  // A source of nothing but rejected bytes, save every 64th, still gives only symbols (the
  // accepted ones, where they fall) and never a 0 or a biased symbol.
  const { source, stream } = fixedSource(() => {
    let i = 0;
    return () => (++i % 64 === 0 ? i % 243 : 243 + (i % 13));
  });
  const got = Buffer.concat(await collect<Buffer>(new RandomSymbols(5000, source), 20_000));
  t.ok(got.equals(expectedKey(5000, stream, simd)), 'a source that is mostly rejected bytes: exactly the accepted ones');
});
