// The 27-symbol alphabet and the lookup tables the cipher, the checks and keygen share.
import { getKernels, REGION } from '../simd/kernels.js';

export const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ ';
export const SYMBOLS = ALPHABET.length;
export const NEWLINE = 0x0a;

/** Value 0..26 of each byte that is a symbol, -1 for every other byte. */
export const VALUE: Int8Array = (() => {
  const value = new Int8Array(256).fill(-1);
  for (let i = 0; i < SYMBOLS; i++) value[ALPHABET.charCodeAt(i)] = i;
  return value;
})();

export type Direction = 'encrypt' | 'decrypt';

/**
 * The whole cipher as one table: entry (text byte << 8 | key byte) is the output symbol,
 * or 0 when either byte is not a symbol. One lookup per byte, no arithmetic.
 */
export function cipherTable(direction: Direction): Uint8Array {
  const table = new Uint8Array(65536);
  for (let t = 0; t < 256; t++) {
    if (VALUE[t] < 0) continue;
    for (let k = 0; k < 256; k++) {
      if (VALUE[k] < 0) continue;
      const sum = direction === 'encrypt' ? VALUE[t] + VALUE[k] : VALUE[t] - VALUE[k] + SYMBOLS;
      table[(t << 8) | k] = ALPHABET.charCodeAt(sum % SYMBOLS);
    }
  }
  return table;
}

/** Below this many bytes the plain loop beats copying into the SIMD kernel's memory. */
export const SIMD_FROM = 4096;

/**
 * A buffer to read up to `bytes` into, REGION bytes at most, and check: for a large input
 * the SIMD kernel's own memory, which findNonSymbol checks where it lies, without a copy;
 * for a small one a plain buffer, so that a short job never builds the kernel.
 */
export function scanBuffer(bytes: number): Buffer {
  const kernels = bytes >= SIMD_FROM ? getKernels() : null;
  return kernels ? kernels.memory.subarray(kernels.a, kernels.a + REGION) : Buffer.allocUnsafe(Math.min(bytes, REGION));
}

/** Index of the first byte in buf[start, end) that is not a symbol, or -1. */
export function findNonSymbol(buf: Uint8Array, start = 0, end = buf.length): number {
  const kernels = end - start >= SIMD_FROM ? getKernels() : null;
  if (!kernels) {
    for (let i = start; i < end; i++) if (VALUE[buf[i]] < 0) return i;
    return -1;
  }
  if (buf.buffer === kernels.memory.buffer) {
    const bad = kernels.scan(buf.byteOffset + start, end - start);
    return bad < 0 ? -1 : start + bad;
  }
  for (let at = start; at < end; at += REGION) {
    const n = Math.min(REGION, end - at);
    kernels.memory.set(buf.subarray(at, at + n), kernels.a);
    const bad = kernels.scan(kernels.a, n);
    if (bad >= 0) return at + bad;
  }
  return -1;
}

/** How a bad byte is shown in an error: the character where it is printable, and its code. */
export function describeByte(byte: number): string {
  if (byte === NEWLINE) return 'newline (0x0a)';
  const hex = `0x${byte.toString(16).padStart(2, '0')}`;
  return byte > 0x20 && byte < 0x7f ? `'${String.fromCharCode(byte)}' (${hex})` : hex;
}
