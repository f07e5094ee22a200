// The WebAssembly kernels on every input byte and every (text, key) byte pair, against a table built here.
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { getKernels, kernelModuleBytes, type Kernels } from '../src/simd/kernels.js';
import { bin } from './helpers/programs.js';
import { ABC, SYMBOL_VALUE } from './helpers/streams.js';

const isSymbol = (b: number): boolean => SYMBOL_VALUE[b] >= 0;

/** The cipher of one pair of symbols, by the spec's arithmetic. */
function cipherOf(direction: 'encrypt' | 'decrypt', text: number, key: number): number {
  const p = SYMBOL_VALUE[text];
  const k = SYMBOL_VALUE[key];
  return ABC.charCodeAt((((direction === 'encrypt' ? p + k : p - k) % 27) + 27) % 27);
}

function kernelsOrFail(t: Test): Kernels | null {
  const kernels = getKernels();
  // Every Node line the project supports has WebAssembly SIMD; its absence is a failure here
  // (the plain loops are tested on their own, with OTP_NO_SIMD=1).
  t.ok(kernels, 'this engine builds the SIMD kernels');
  return kernels;
}

t.test('the scan kernel on every byte', async (t) => {
  const k = kernelsOrFail(t);
  if (!k) return;
  // All 256 bytes in a row: each call must stop at the next byte that is not a symbol.
  k.memory.fill(0x41, k.a, k.a + 512);
  for (let b = 0; b < 256; b++) k.memory[k.a + b] = b;
  const found: number[] = [];
  for (let at = 0; at < 256; ) {
    const bad = k.scan(k.a + at, 256 - at);
    if (bad < 0) break;
    found.push(at + bad);
    at += bad + 1;
  }
  const want = [...Array(256).keys()].filter((b) => !isSymbol(b));
  t.same(found, want, `stops at exactly the ${want.length} bytes that are not symbols, in order`);
  // Each byte alone in every lane of a block of 'A's: found there, or not at all.
  let wrong = 0;
  for (let b = 0; b < 256; b++) {
    for (let lane = 0; lane < 16; lane++) {
      k.memory.fill(0x41, k.a, k.a + 32);
      k.memory[k.a + lane] = b;
      if (k.scan(k.a, 32) !== (isSymbol(b) ? -1 : lane)) wrong++;
    }
  }
  t.equal(wrong, 0, 'every byte in every lane: -1 for the 27 symbols, its lane otherwise');
});

t.test('the cipher kernels on every (text, key) byte pair', async (t) => {
  const k = kernelsOrFail(t);
  if (!k) return;
  for (const direction of ['encrypt', 'decrypt'] as const) {
    const kernel = direction === 'encrypt' ? k.encrypt : k.decrypt;
    // All 65,536 pairs in one stretch: every call must stop at the next pair with a byte
    // that is not a symbol, and the good pairs in between must not stop it.
    for (let i = 0; i < 65536; i++) {
      k.memory[k.a + i] = i >> 8;
      k.memory[k.b + i] = i & 0xff;
    }
    const stops: number[] = [];
    for (let at = 0; at < 65536; ) {
      const bad = kernel(k.a + at, k.b + at, k.out + at, 65536 - at);
      if (bad < 0) break;
      stops.push(at + bad);
      at += bad + 1;
    }
    const want: number[] = [];
    for (let i = 0; i < 65536; i++) if (!isSymbol(i >> 8) || !isSymbol(i & 0xff)) want.push(i);
    t.equal(stops.length, want.length, `${direction}: stops at ${want.length} pairs, as many as have a non-symbol`);
    const first = stops.findIndex((at, i) => at !== want[i]);
    t.equal(first, -1, `${direction}: stops at exactly those pairs, in order${first < 0 ? '' : ` (stop ${first} is at ${stops[first]}, not ${want[first]})`}`);

    // The 729 pairs of symbols, contiguous so that no stop cuts the output short, at each
    // of the 16 offsets into a block: every pair in every lane.
    const pairs: [number, number][] = [];
    for (const x of ABC) for (const y of ABC) pairs.push([x.charCodeAt(0), y.charCodeAt(0)]);
    let wrong = 0;
    for (let shift = 0; shift < 16; shift++) {
      pairs.forEach(([x, y], i) => {
        k.memory[k.a + shift + i] = x;
        k.memory[k.b + shift + i] = y;
      });
      const bad = kernel(k.a + shift, k.b + shift, k.out + shift, pairs.length);
      if (bad !== -1) wrong++;
      pairs.forEach(([x, y], i) => {
        if (k.memory[k.out + shift + i] !== cipherOf(direction, x, y)) wrong++;
      });
    }
    t.equal(wrong, 0, `${direction}: all 729 pairs of symbols, in every lane, give the mod-27 result`);
  }
});

t.test("keygen's byte-to-symbol kernel on every byte", async (t) => {
  const k = kernelsOrFail(t);
  if (!k) return;
  for (let b = 0; b < 256; b++) k.memory[k.a + b] = b;
  k.symbols(k.a, 256);
  const out = k.memory.subarray(k.a, k.a + 256);
  let wrong = 0;
  for (let b = 0; b < 256; b++) if (out[b] !== (b < 243 ? ABC.charCodeAt(b % 27) : 0)) wrong++;
  t.equal(wrong, 0, 'byte b becomes symbol b mod 27 below 243, and 0 (rejected) from 243 up');
  const counts = new Map<number, number>();
  for (const s of out) if (s !== 0) counts.set(s, (counts.get(s) ?? 0) + 1);
  t.equal([...counts.values()].reduce((a, b) => a + b, 0), 243, 'exactly 243 bytes accepted');
  t.same([...counts.keys()].sort((x, y) => x - y), [...ABC].map((c) => c.charCodeAt(0)).sort((x, y) => x - y), 'every symbol, nothing else');
  t.ok([...counts.values()].every((n) => n === 9), 'each of the 27 symbols from exactly 9 bytes');
});

t.test("the built programs carry the assembler's module, byte for byte", async (t) => {
  // compileall builds kernelModuleBytes() into each bundle (OTP_KERNELS_WASM), so the
  // module the programs run is the one every test here checks from source.
  const want = `"${Buffer.from(kernelModuleBytes()).toString('base64')}"`;
  for (const program of ['enc_client', 'dec_client', 'enc_server', 'dec_server', 'keygen']) {
    t.ok(readFileSync(bin(program), 'utf8').includes(want), `${program} carries it`);
  }
});
