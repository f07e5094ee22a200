// Properties of SymbolCheck: symbols pass, one newline only as the very last byte, bad bytes named by 1-based position.
import assert from 'node:assert/strict';
import t from 'tap';
import fc from 'fast-check';
import { describeByte, findNonSymbol, SIMD_FROM } from '../src/cipher/alphabet.js';
import { REGION } from '../src/simd/kernels.js';
import { UserError } from '../src/cli/errors.js';
import type { InputFile } from '../src/client/input-file.js';
import { SymbolCheck } from '../src/client/symbol-check.js';
import { ABC, chunkSizes, holds, nonSymbolByte, seededSymbols, split, SYMBOL_VALUE } from './helpers/streams.js';

const NEWLINE = 0x0a;
const isSymbol = (b: number) => SYMBOL_VALUE[b] >= 0;

function file(what: string, path: string): InputFile {
  return { what, path, fd: -1, regular: false, size: 0 };
}

/** The first byte of a whole stream that is bad: anything but a symbol, except a newline that ends the stream. */
function firstBad(bytes: Buffer): number {
  return bytes.findIndex((b, i) => !isSymbol(b) && !(b === NEWLINE && i === bytes.length - 1));
}

type Outcome = { symbols: Buffer; error: Error | null };

/** Runs the chunks through one SymbolCheck until it throws. */
function check(what: string, path: string, chunks: readonly Buffer[]): Outcome {
  const checker = new SymbolCheck(file(what, path));
  const symbols: Buffer[] = [];
  try {
    for (const chunk of chunks) symbols.push(checker.symbols(chunk));
  } catch (err) {
    return { symbols: Buffer.concat(symbols), error: err as Error };
  }
  return { symbols: Buffer.concat(symbols), error: null };
}

/** Asserts the outcome for a stream: all its symbols, or an error naming the first bad byte. */
function assertOutcome(bytes: Buffer, got: Outcome, what: string, path: string): void {
  const bad = firstBad(bytes);
  if (bad < 0) {
    assert.equal(got.error, null, `a good stream was refused: ${got.error?.message}`);
    const want = bytes.length > 0 && bytes[bytes.length - 1] === NEWLINE ? bytes.subarray(0, -1) : bytes;
    assert.equal(got.symbols.toString('latin1'), want.toString('latin1'));
    return;
  }
  assert.ok(got.error, `bad byte ${bad + 1} (${describeByte(bytes[bad])}) was let through`);
  assert.ok(got.error instanceof UserError, 'a UserError');
  const message = got.error.message;
  assert.match(message, new RegExp(` at byte ${bad + 1}$`));
  assert.ok(message.includes(describeByte(bytes[bad])), `'${message}' names ${describeByte(bytes[bad])}`);
  assert.ok(message.includes(`${what} '${path}'`), `'${message}' names ${what} '${path}'`);
  // What was passed on before the error are symbols of the stream, in order, before the bad byte.
  assert.ok(got.symbols.length <= bad, `${got.symbols.length} bytes passed on before bad byte ${bad + 1}`);
  assert.equal(got.symbols.toString('latin1'), bytes.subarray(0, got.symbols.length).toString('latin1'));
}

/** Bytes that are mostly symbols, with the odd newline and the odd other byte. */
const stream = fc
  .tuple(
    fc.array(
      fc.oneof(
        { weight: 30, arbitrary: fc.constantFrom(...[...ABC].map((c) => c.charCodeAt(0))) },
        { weight: 1, arbitrary: fc.constant(NEWLINE) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
      ),
      { maxLength: 120 },
    ),
    fc.boolean(),
  )
  .map(([bytes, newline]) => Buffer.from(newline ? [...bytes, NEWLINE] : bytes));

/** A chunking: sizes cycling, and where to slip in empty chunks. */
const chunking = fc.record({ sizes: chunkSizes(24), empties: fc.array(fc.nat(), { maxLength: 4 }) });

function chunks(bytes: Buffer, c: { sizes: number[]; empties: number[] }): Buffer[] {
  const out = split(bytes, c.sizes);
  for (const at of c.empties) out.splice(at % (out.length + 1), 0, Buffer.alloc(0));
  return out;
}

t.test('edge chunkings around the newline', async (t) => {
  const cases = [
    ['ABC'],
    ['ABC\n'],
    ['ABC', '\n'],
    ['ABC\n', ''],
    ['\n'],
    [],
    ['ABC\n', 'D'],
    ['AB', '\n', 'C'],
    ['AB\nC'],
    ['\n\n'],
    ['\n', '\n'],
    ['\n', '', '\n'],
    ['A', 'b'],
    ['AB\r\n'],
    ['AB\n\r'],
  ];
  for (const parts of cases) {
    const chunks = parts.map((p) => Buffer.from(p));
    const bytes = Buffer.concat(chunks);
    const got = check('key', 'k', chunks);
    t.doesNotThrow(() => assertOutcome(bytes, got, 'key', 'k'), `${JSON.stringify(parts)}: ${got.error?.message ?? 'good'}`);
  }
});

t.test('any chunking gives the same answer as the whole stream', async (t) => {
  await holds(
    t,
    'symbols pass; a newline only as the last byte; the first bad byte named by its 1-based position',
    fc.property(stream, chunking, fc.constantFrom('text', 'ciphertext', 'key'), (bytes, c, what) => {
      const path = `${what}.txt`;
      assertOutcome(bytes, check(what, path, chunks(bytes, c)), what, path);
      assertOutcome(bytes, check(what, path, split(bytes, [1])), what, path);
      assertOutcome(bytes, check(what, path, [bytes]), what, path);
    }),
    { numRuns: 300 },
  );

  await holds(
    t,
    'a newline anywhere but last is refused at its position, however the chunks fall',
    fc.property(
      fc.array(fc.constantFrom(...[...ABC].map((c) => c.charCodeAt(0))), { minLength: 1, maxLength: 80 }),
      fc.nat(),
      chunking,
      (symbols, where, c) => {
        const at = where % symbols.length; // a newline before symbol `at`: never the last byte
        const bytes = Buffer.from([...symbols.slice(0, at), NEWLINE, ...symbols.slice(at)]);
        assert.equal(firstBad(bytes), at);
        assertOutcome(bytes, check('text', 'p', chunks(bytes, c)), 'text', 'p');
      },
    ),
    { numRuns: 200 },
  );
});

/** Lengths either side of the thresholds where findNonSymbol changes how it works. */
const length = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: SIMD_FROM - 20, max: SIMD_FROM + 20 }) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 40_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: REGION - 20, max: REGION + 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: REGION, max: 2 * REGION + 40 }) },
);

/** Symbols with up to three bad bytes (newlines among them) at chosen places, often near a REGION boundary. */
const longStream = fc
  .tuple(
    length,
    fc.integer(),
    fc.array(fc.tuple(fc.nat(), fc.oneof(nonSymbolByte(), fc.constant(NEWLINE))), { maxLength: 3 }),
    fc.boolean(),
  )
  .map(([n, seed, bad, newline]) => {
    const bytes = seededSymbols(seed, n);
    for (const [r, byte] of bad) {
      if (n === 0) break;
      bytes[r % 5 === 0 ? Math.min(n - 1, REGION - 2 + (r % 4)) : r % n] = byte;
    }
    return newline ? Buffer.concat([bytes, Buffer.of(NEWLINE)]) : bytes;
  });

t.test('long inputs (the SIMD scan, from SIMD_FROM bytes, in REGION pieces)', async (t) => {
  await holds(
    t,
    'findNonSymbol(buf, start, end) is the first non-symbol in [start, end)',
    fc.property(longStream, fc.nat(), fc.nat(), (bytes, r1, r2) => {
      const start = r1 % 3 === 0 ? 0 : r1 % (bytes.length + 1);
      const end = r2 % 3 === 0 ? bytes.length : start + (r2 % (bytes.length - start + 1));
      let want = -1;
      for (let i = start; i < end; i++) {
        if (SYMBOL_VALUE[bytes[i]] < 0) {
          want = i;
          break;
        }
      }
      assert.equal(findNonSymbol(bytes, start, end), want, `[${start}, ${end}) of ${bytes.length}`);
      if (start === 0 && end === bytes.length) assert.equal(findNonSymbol(bytes), want, 'the default range');
    }),
    { numRuns: 100 },
  );

  await holds(
    t,
    'SymbolCheck over long chunks gives the same answer as the whole stream',
    fc.property(
      longStream,
      fc.array(fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: SIMD_FROM, max: 3 * REGION })), { minLength: 1, maxLength: 4 }),
      (bytes, sizes) => {
        // Never only small pieces of a long stream: too many calls for a quick test.
        const cut = sizes.some((n) => n >= SIMD_FROM) ? sizes : [...sizes, SIMD_FROM];
        assertOutcome(bytes, check('key', 'big.key', split(bytes, cut)), 'key', 'big.key');
        assertOutcome(bytes, check('key', 'big.key', [bytes]), 'key', 'big.key');
      },
    ),
    { numRuns: 60 },
  );
});
