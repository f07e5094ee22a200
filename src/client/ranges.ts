// Arithmetic on the stretches of a key already used: pure functions over sorted, disjoint ranges.

/** Key symbols [start, end): start included, end not. */
export interface Range {
  start: number;
  end: number;
}

/** Sorted by start, pairwise disjoint and not touching (touching ranges are merged), none empty. */
export type Used = readonly Range[];

/** The same symbols as a sorted, merged list. */
export function normalize(ranges: readonly Range[]): Range[] {
  const sorted = ranges.filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ start: r.start, end: r.end });
  }
  return out;
}

/** `used` with `range` added. */
export function add(used: Used, range: Range): Range[] {
  return normalize([...used, range]);
}

/** `used` without the symbols of `range`. */
export function remove(used: Used, range: Range): Range[] {
  const out: Range[] = [];
  for (const r of used) {
    if (r.end <= range.start || r.start >= range.end) out.push({ ...r });
    else {
      if (r.start < range.start) out.push({ start: r.start, end: range.start });
      if (r.end > range.end) out.push({ start: range.end, end: r.end });
    }
  }
  return out;
}

/** The first used range that shares a symbol with `range`, or null. */
export function overlap(used: Used, range: Range): Range | null {
  if (range.end <= range.start) return null;
  return used.find((r) => r.start < range.end && r.end > range.start) ?? null;
}

/** The unused stretches of a key of `keyLength` symbols, in order. */
export function gaps(used: Used, keyLength: number): Range[] {
  const out: Range[] = [];
  let at = 0;
  for (const r of used) {
    if (r.start >= keyLength) break;
    if (r.start > at) out.push({ start: at, end: r.start });
    at = Math.max(at, r.end);
  }
  if (at < keyLength) out.push({ start: at, end: keyLength });
  return out;
}

/** The lowest offset where `length` unused symbols follow, within the key; null if none. */
export function lowestFit(used: Used, keyLength: number, length: number): number | null {
  return gaps(used, keyLength).find((g) => g.end - g.start >= length)?.start ?? null;
}

/** The longest unused stretch (the lowest of equals), or null when the whole key is used. */
export function longestGap(used: Used, keyLength: number): Range | null {
  let best: Range | null = null;
  for (const g of gaps(used, keyLength)) if (!best || g.end - g.start > best.end - best.start) best = g;
  return best;
}

/** The unused stretch that starts exactly at `offset`, or null when symbol `offset` is used or past the key. */
export function gapFrom(used: Used, keyLength: number, offset: number): Range | null {
  const g = gaps(used, keyLength).find((g) => g.start <= offset && offset < g.end);
  return g ? { start: offset, end: g.end } : null;
}

/** How many symbols the ranges hold below `keyLength`. */
export function usedCount(used: Used, keyLength: number): number {
  return used.reduce((sum, r) => sum + Math.max(0, Math.min(r.end, keyLength) - r.start), 0);
}
