// Properties of keygen's RandomSymbols and writeRandomSymbols: the count, the alphabet, the newline, uniformity, the exact mapping.
import assert from 'node:assert/strict';
import t from 'tap';
import fc from 'fast-check';
import { randomFillSync } from 'node:crypto';
import { getKernels, REGION } from '../src/simd/kernels.js';
import { Writable } from 'node:stream';
import { RandomSymbols, writeRandomSymbols, type RandomSource } from '../src/keygen/random-symbols.js';
import { ABC, holds } from './helpers/streams.js';

const NEWLINE = 0x0a;

/** Index of the first byte of `buf` that is not one of the 27 symbols, or -1. */
function firstNonSymbol(buf: Buffer): number {
  const ok = new Uint8Array(256);
  for (const ch of ABC) ok[ch.charCodeAt(0)] = 1;
  return buf.findIndex((b) => ok[b] === 0);
}

/**
 * What writeRandomSymbols writes, as keygen writes it. The sink reads each chunk only on
 * a later turn, just before its write is done: a buffer drawn into again before its
 * write was done would show as symbols that are not the source's.
 */
function draw(count: number, source?: RandomSource): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, written) {
        setImmediate(() => {
          parts.push(Buffer.from(chunk));
          written();
        });
      },
    });
    writeRandomSymbols(new RandomSymbols(count, source), sink, (err) => (err ? reject(err) : resolve(Buffer.concat(parts))));
  });
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
  for (const count of [0, 1, 65535, 65536, 65537, 200000, 1048575, 1048576, 1048577, 2200000]) {
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

t.test('a huge count is drawn a chunk at a time, never twice from the same random bytes', async (t) => {
  const symbols = new RandomSymbols(1e10);
  const into = Buffer.allocUnsafe(CHUNK);
  const chunks: Buffer[] = [];
  let bytes = 0;
  while (bytes < 300_000) {
    const chunk = symbols.next(into)!;
    chunks.push(Buffer.from(chunk));
    bytes += chunk.length;
  }
  t.ok(
    chunks.every((c) => c.length === CHUNK),
    `chunks of 1 MiB, the buffer given (${chunks.map((c) => c.length).join(', ')})`,
  );
  const all = Buffer.concat(chunks).subarray(0, 300_000);
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

/** Symbols per output chunk. */
const CHUNK = 1 << 20;

/**
 * What keygen must write for `count` symbols from a source that gives `stream`, byte b
 * standing for symbol b mod 27 and bytes from 243 up rejected. With the SIMD kernel, each
 * 1 MiB output chunk is filled by draws of a little more than 256/243 times what is still
 * missing, rounded to 16 (at most REGION), whose accepted bytes are taken in order and
 * the surplus dropped; without it, from a reserve the source refills 64 KiB at a time,
 * taking the accepted bytes in order.
 */
function expectedKey(count: number, stream: (n: number) => Uint8Array, simd: boolean): Buffer {
  const out = Buffer.alloc(count + 1);
  const symbol = (b: number): number => ABC.charCodeAt(b % 27);
  if (simd) {
    for (let done = 0; done < count; ) {
      for (let need = Math.min(CHUNK, count - done); need > 0; ) {
        const draw = Math.min(REGION, (Math.ceil((need * 256) / 243 / 16) + 4) * 16);
        for (const b of stream(draw)) {
          if (b >= 243 || need === 0) continue;
          out[done++] = symbol(b);
          need--;
        }
      }
    }
  } else {
    let reserve: Uint8Array = new Uint8Array(0);
    let at = 0;
    for (let done = 0; done < count; done++) {
      for (;;) {
        if (at === reserve.length) {
          reserve = stream(RESERVE);
          at = 0;
        }
        const b = reserve[at++];
        if (b < 243) {
          out[done] = symbol(b);
          break;
        }
      }
    }
  }
  out[count] = NEWLINE;
  return out;
}

t.test('the output is exactly the mapping of what the random source gives, rejections included', async (t) => {
  t.equal(new RandomSymbols(1).source, randomFillSync, "the default source is node:crypto's randomFillSync");
  const simd = getKernels() !== null;
  t.comment(simd ? 'with the SIMD kernel' : 'with the plain loop (no SIMD kernel)');
  for (const count of [0, 1, 16, 1000, 65535, 65536, 65537, 200_000, 1_048_576, 1_100_000]) {
    const { source, stream } = fixedSource(() => bytesFrom(count + 7));
    const got = await draw(count, source);
    const want = expectedKey(count, stream, simd);
    t.ok(got.equals(want), `keygen ${count}: byte for byte what the source's bytes map to`);
  }
  // A source of nothing but rejected bytes, save every 64th, still gives only symbols (the
  // accepted ones, where they fall) and never a 0 or a biased symbol.
  const { source, stream } = fixedSource(() => {
    let i = 0;
    return () => (++i % 64 === 0 ? i % 243 : 243 + (i % 13));
  });
  const got = await draw(5000, source);
  t.ok(got.equals(expectedKey(5000, stream, simd)), 'a source that is mostly rejected bytes: exactly the accepted ones');
});
