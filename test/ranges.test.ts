// The ledger's range arithmetic against a plain model, a boolean per key symbol: allocation is disjoint and lowest-first.
import fc from 'fast-check';
import t from 'tap';
import { add, gapFrom, gaps, longestGap, lowestFit, normalize, overlap, remove, usedCount, type Range } from '../src/client/ranges.js';

/** The model: which symbols of a key are used. */
function toBits(ranges: readonly Range[], keyLength: number): boolean[] {
  const bits = new Array<boolean>(keyLength).fill(false);
  for (const r of ranges) for (let i = r.start; i < Math.min(r.end, keyLength); i++) bits[i] = true;
  return bits;
}

/** The model's lowest offset with `length` unused symbols, or null. */
function modelFit(bits: boolean[], length: number): number | null {
  for (let s = 0; s + length <= bits.length; s++) if (bits.slice(s, s + length).every((b) => !b)) return s;
  return null;
}

function isNormal(ranges: readonly Range[]): boolean {
  return ranges.every((r, i) => r.start < r.end && (i === 0 || r.start > ranges[i - 1].end));
}

const KEY = 120;
const range = fc.tuple(fc.nat(KEY + 10), fc.nat(40)).map(([start, length]) => ({ start, end: start + length }));

t.test('for any sequence of job lengths, the ranges handed out are disjoint and the lowest that fit', (t) => {
  fc.assert(
    fc.property(fc.array(range, { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 30 }), (earlier, jobs) => {
      let used = normalize(earlier);
      const given: Range[] = [];
      for (const length of jobs) {
        const bits = toBits(used, KEY);
        const start = lowestFit(used, KEY, length);
        if (start !== modelFit(bits, length)) return false;
        if (start === null) continue;
        const job = { start, end: start + length };
        if (job.end > KEY || overlap(used, job) !== null) return false;
        if (given.some((g) => g.start < job.end && job.start < g.end)) return false;
        given.push(job);
        used = add(used, job);
        if (!isNormal(used)) return false;
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.end();
});

t.test('add, remove and normalize are set union and difference, in normal form', (t) => {
  fc.assert(
    fc.property(fc.array(range, { maxLength: 10 }), range, (ranges, other) => {
      const used = normalize(ranges);
      const span = KEY + 60;
      const bits = toBits(ranges, span);
      const otherBits = toBits([other], span);
      const added = add(used, other);
      const removed = remove(used, other);
      return (
        isNormal(used) &&
        isNormal(added) &&
        isNormal(normalize(removed)) &&
        toBits(used, span).every((b, i) => b === bits[i]) &&
        toBits(added, span).every((b, i) => b === (bits[i] || otherBits[i])) &&
        toBits(removed, span).every((b, i) => b === (bits[i] && !otherBits[i])) &&
        (overlap(used, other) !== null) === bits.some((b, i) => b && otherBits[i]) &&
        usedCount(used, KEY) === bits.slice(0, KEY).filter(Boolean).length
      );
    }),
    { numRuns: 1000 },
  );
  t.end();
});

t.test('gaps, the longest gap and the gap from an offset agree with the model', (t) => {
  fc.assert(
    fc.property(fc.array(range, { maxLength: 10 }), fc.nat(KEY + 5), (ranges, offset) => {
      const used = normalize(ranges);
      const bits = toBits(used, KEY);
      const free = gaps(used, KEY);
      const freeBits = toBits(free, KEY);
      if (!bits.every((b, i) => b !== freeBits[i]) || !isNormal(free)) return false;
      const lengths = free.map((g) => g.end - g.start);
      const expected = free.length === 0 ? null : free[lengths.indexOf(Math.max(...lengths))];
      const longest = longestGap(used, KEY);
      if (longest?.start !== expected?.start || longest?.end !== expected?.end) return false;
      const from = gapFrom(used, KEY, offset);
      if (offset >= KEY || bits[offset]) return from === null;
      let end = offset;
      while (end < KEY && !bits[end]) end++;
      return from !== null && from.start === offset && from.end === end;
    }),
    { numRuns: 1000 },
  );
  t.end();
});

t.test('corner cases', (t) => {
  t.same(lowestFit([], 10, 10), 0, 'a whole empty key fits a text of its length');
  t.equal(lowestFit([], 10, 11), null, 'not one symbol more');
  t.equal(lowestFit([{ start: 0, end: 10 }], 10, 1), null, 'a full key fits nothing');
  t.same(lowestFit([{ start: 2, end: 4 }], 10, 2), 0, 'the stretch before a used range counts');
  t.same(lowestFit([{ start: 2, end: 4 }], 10, 3), 4, 'too short a stretch is skipped');
  t.same(add([{ start: 0, end: 3 }], { start: 3, end: 5 }), [{ start: 0, end: 5 }], 'touching ranges merge');
  t.same(remove([{ start: 0, end: 10 }], { start: 3, end: 5 }), [{ start: 0, end: 3 }, { start: 5, end: 10 }], 'removing splits');
  t.equal(longestGap([{ start: 0, end: 10 }], 10), null, 'a full key has no longest gap');
  t.same(longestGap([{ start: 3, end: 5 }], 8), { start: 0, end: 3 }, 'of two gaps of 3, the lowest');
  t.same(longestGap([{ start: 3, end: 5 }], 9), { start: 5, end: 9 }, 'the longer of two gaps');
  t.end();
});
