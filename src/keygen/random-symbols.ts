// A given number of uniformly random alphabet symbols from node:crypto, then a newline, drawn into buffers the caller reuses.
import { randomFillSync } from 'node:crypto';
import { ALPHABET, NEWLINE, SYMBOLS } from '../cipher/alphabet.js';
import { getKernels, REGION, type Kernels } from '../simd/kernels.js';

/** 243 = 9 × 27 is the largest multiple of 27 a byte can hold; bytes from 243 up are drawn again. */
const ACCEPT_BELOW = 256 - (256 % SYMBOLS);
const REJECTED = 0;

/** Symbol for each random byte, REJECTED for the bytes that would bias the draw. */
const SYMBOL_OF_BYTE = (() => {
  const table = new Uint8Array(256);
  for (let b = 0; b < ACCEPT_BELOW; b++) table[b] = ALPHABET.charCodeAt(b % SYMBOLS);
  return table;
})();

/** Symbols per chunk written: large, so that the cost per chunk is nothing. */
const CHUNK = 1 << 20;
const RANDOM_BYTES = 64 * 1024;
/** Chunks in flight at once in writeRandomSymbols: each is filled again once its write is done. */
const CHUNKS = 4;

/** Fills buf[offset, offset + size) with random bytes, as node:crypto's randomFillSync does. */
export type RandomSource = (buf: Uint8Array, offset: number, size: number) => unknown;

export class RandomSymbols {
  private _left: number;
  private _newlineSent = false;
  /** Random bytes for the plain loop, where there is no SIMD. */
  private readonly _random = Buffer.allocUnsafe(RANDOM_BYTES);
  /** Bytes of _random not yet used. */
  private _randomAt = RANDOM_BYTES;

  /** `source`: where the random bytes come from; a test passes its own to check the mapping. */
  constructor(
    count: number,
    readonly source: RandomSource = randomFillSync,
  ) {
    this._left = count;
  }

  /**
   * The next symbols, drawn into the start of `into` (at most its length; the newline
   * after the last symbol where there is room, else alone next time), as a view of it;
   * null once everything, newline included, has been given.
   */
  next(into: Buffer): Buffer | null {
    if (this._left === 0) {
      if (this._newlineSent) return null;
      this._newlineSent = true;
      into[0] = NEWLINE;
      return into.subarray(0, 1);
    }
    const n = Math.min(into.length, this._left);
    const out = into.subarray(0, n);
    const kernels = getKernels();
    if (kernels) this._fillSimd(out, kernels);
    else this._fill(out);
    this._left -= n;
    if (this._left > 0 || n === into.length) return out;
    this._newlineSent = true;
    into[n] = NEWLINE;
    return into.subarray(0, n + 1);
  }

  /**
   * Sixteen draws a step in the SIMD kernel, which leaves a 0 where a draw is rejected;
   * a second kernel packs the accepted symbols together, and a stretch of random bytes
   * a little longer than needed (243 of 256 are accepted) is drawn until `out` is full.
   * Every symbol is one accepted, unbiased draw, independent of the others; the accepted
   * symbols left over at the end of a stretch are dropped, whatever their values.
   */
  private _fillSimd(out: Buffer, kernels: Kernels): void {
    const { memory, a } = kernels;
    for (let filled = 0; filled < out.length; ) {
      const need = out.length - filled;
      const draw = Math.min(REGION, (Math.ceil((need * 256) / ACCEPT_BELOW / 16) + 4) * 16);
      this.source(memory, a, draw);
      kernels.symbols(a, draw);
      const n = Math.min(need, kernels.compact(a, draw, kernels.out));
      memory.copy(out, filled, kernels.out, kernels.out + n);
      filled += n;
    }
  }

  private _fill(out: Buffer): void {
    const random = this._random;
    let filled = 0;
    let at = this._randomAt;
    while (filled < out.length) {
      if (at === random.length) {
        this.source(random, 0, random.length);
        at = 0;
      }
      // Every byte is written; only accepted ones advance the output.
      const end = Math.min(random.length, at + (out.length - filled));
      for (; at < end && filled < out.length; at++) {
        const symbol = SYMBOL_OF_BYTE[random[at]];
        out[filled] = symbol;
        filled += symbol === REJECTED ? 0 : 1;
      }
    }
    this._randomAt = at;
  }
}

/**
 * Writes every symbol and the newline to `out`, through CHUNKS buffers of CHUNK bytes
 * that are drawn into again as soon as their writes are done: the memory is the same few
 * MiB from start to end, and nothing is left to collect. `done` once `out` has taken the
 * last byte, or with the first error.
 */
export function writeRandomSymbols(symbols: RandomSymbols, out: NodeJS.WritableStream, done: (err: Error | null) => void): void {
  const free: Buffer[] = [];
  let made = 0;
  let failed = false;
  let ended = false;
  const pump = (): void => {
    while (!ended) {
      const buffer = free.pop() ?? (made < CHUNKS ? (made++, Buffer.allocUnsafe(CHUNK)) : null);
      if (!buffer) return; // every buffer is out: the next write done calls again
      const chunk = symbols.next(buffer);
      if (!chunk) {
        ended = true;
        return void out.end(() => failed || done(null));
      }
      out.write(chunk, (err) => {
        if (failed) return;
        if (err) {
          failed = true;
          return done(err);
        }
        free.push(buffer);
        if (free.length === 1) pump();
      });
    }
  };
  pump();
}
