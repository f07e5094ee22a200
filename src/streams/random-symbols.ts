// Readable: a given number of uniformly random alphabet symbols from node:crypto, then a newline.
import { randomFillSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { ALPHABET, NEWLINE, SYMBOLS } from '../alphabet.js';
import { getKernels, type Kernels } from '../simd/kernels.js';

/** 243 = 9 × 27 is the largest multiple of 27 a byte can hold; bytes from 243 up are drawn again. */
const ACCEPT_BELOW = 256 - (256 % SYMBOLS);
const REJECTED = 0;

/** Symbol for each random byte, REJECTED for the bytes that would bias the draw. */
const SYMBOL_OF_BYTE = (() => {
  const table = new Uint8Array(256);
  for (let b = 0; b < ACCEPT_BELOW; b++) table[b] = ALPHABET.charCodeAt(b % SYMBOLS);
  return table;
})();

const CHUNK = 64 * 1024;

/** Fills buf[offset, offset + size) with random bytes, as node:crypto's randomFillSync does. */
export type RandomSource = (buf: Uint8Array, offset: number, size: number) => unknown;

export class RandomSymbols extends Readable {
  private _left: number;
  private _newlineSent = false;
  private readonly _random = Buffer.allocUnsafe(CHUNK);
  /** Bytes of _random not yet used. */
  private _randomAt = CHUNK;

  /** `source`: where the random bytes come from; a test passes its own to check the mapping. */
  constructor(
    count: number,
    readonly source: RandomSource = randomFillSync,
  ) {
    super({ highWaterMark: CHUNK });
    this._left = count;
  }

  override _read(): void {
    if (this._left === 0) {
      if (!this._newlineSent) this.push(Buffer.of(NEWLINE));
      this._newlineSent = true;
      this.push(null);
      return;
    }
    const n = Math.min(CHUNK, this._left);
    const out = Buffer.allocUnsafe(n);
    const kernels = getKernels();
    if (kernels) this._fillSimd(out, kernels);
    else this._fill(out);
    this._left -= n;
    this.push(out);
  }

  /**
   * Sixteen draws a step in the SIMD kernel, which leaves a 0 where a draw is rejected;
   * each of those (one in twenty) is then drawn again, one at a time. Every symbol is
   * still one accepted, unbiased draw, independent of the others.
   */
  private _fillSimd(out: Buffer, kernels: Kernels): void {
    const { memory, a } = kernels;
    this.source(memory, a, out.length);
    kernels.symbols(a, out.length);
    memory.copy(out, 0, a, a + out.length);
    for (let i = out.indexOf(REJECTED); i >= 0; i = out.indexOf(REJECTED, i + 1)) out[i] = this._drawOne();
  }

  private _drawOne(): number {
    const random = this._random;
    for (;;) {
      if (this._randomAt === random.length) {
        this.source(random, 0, random.length);
        this._randomAt = 0;
      }
      const symbol = SYMBOL_OF_BYTE[random[this._randomAt++]];
      if (symbol !== REJECTED) return symbol;
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
