// The hot loops (checking symbols, the cipher, keygen's mapping) as WebAssembly SIMD, sixteen bytes a step.
//
// The module is assembled here from its opcodes rather than shipped as a binary, so the
// bundles stay plain JavaScript and every instruction can be read. It owns one memory;
// callers copy or read their bytes into the regions below and call a kernel on them.

/** Bytes in each of the three work regions; inputs longer than this go in pieces. */
export const REGION = 1 << 20;
/** A kernel reads and writes whole 16-byte blocks, up to 15 bytes past the end. */
const SLACK = 16;
const PAGE = 65536;

export interface Kernels {
  memory: Buffer;
  /** Offsets of the regions in `memory`. */
  a: number;
  b: number;
  out: number;
  /** Index of the first byte of memory[p, p + n) that is not a symbol, or -1. */
  scan(p: number, n: number): number;
  /**
   * Writes the cipher of memory[t..] with memory[k..] to memory[o..] for n bytes; returns
   * the index of the first pair with a byte that is not a symbol (output stops there), or -1.
   */
  encrypt(t: number, k: number, o: number, n: number): number;
  decrypt(t: number, k: number, o: number, n: number): number;
  /**
   * Turns the random bytes memory[p, p + n) into symbols in place, byte b into symbol
   * b mod 27, except that the bytes from 243 up (the biased tail) become 0.
   */
  symbols(p: number, n: number): void;
  /**
   * Copies the bytes of memory[p, p + n) that are not 0 to memory[o...], in order, and
   * returns how many there are; n a multiple of 16. Writes up to 16 bytes past the last.
   */
  compact(p: number, n: number, o: number): number;
}

// --- opcodes ------------------------------------------------------------------------------
const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, if: 0x04, end: 0x0b, br: 0x0c, brIf: 0x0d, return: 0x0f,
  localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Const: 0x41, i32Eqz: 0x45, i32LtU: 0x49, i32GeU: 0x4f, i32Ctz: 0x68, i32Popcnt: 0x69, i32Add: 0x6a,
  i32Sub: 0x6b, i32And: 0x71, i32Shl: 0x74, i32ShrU: 0x76,
} as const;
const simd = {
  load: 0x00, store: 0x0b, swizzle: 0x0e, splat: 0x0f, eq: 0x23, ltU: 0x26, load64Zero: 0x5d,
  not: 0x4d, and: 0x4e, or: 0x50, bitselect: 0x52, bitmask: 0x64,
  add: 0x6e, sub: 0x71, minU: 0x77,
} as const;
const VOID = 0x40;

function leb(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}
const uleb = (value: number): number[] => {
  const out: number[] = [];
  do {
    const byte = value & 0x7f;
    value >>>= 7;
    out.push(value ? byte | 0x80 : byte);
  } while (value);
  return out;
};
const s = (code: number): number[] => [0xfd, ...uleb(code)];
const get = (i: number): number[] => [op.localGet, i];
const set = (i: number): number[] => [op.localSet, i];
const i32 = (n: number): number[] => [op.i32Const, ...leb(n)];
const splat = (byte: number): number[] => [...i32(byte), ...s(simd.splat)];
const load = (base: number, index: number): number[] => [...get(base), ...get(index), op.i32Add, ...s(simd.load), 0, 0];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (text: string): number[] => [...uleb(text.length), ...Buffer.from(text)];

/** Is each lane a symbol? Leaves a mask; `v` is the lane's byte, `a` its byte minus 'A'. */
const symbolMask = (v: number, a: number): number[] => [
  ...get(a), ...splat(26), ...s(simd.ltU),
  ...get(v), ...splat(0x20), ...s(simd.eq),
  ...s(simd.or),
];

/**
 * The loop every kernel shares: i from 0 by 16 while i < n; `step` runs with i set and
 * leaves a mask of bad lanes (all zero when the block is good) for the loop to check.
 * On a bad block it returns i + the first bad lane when that is below n; a bad lane past
 * n is only the slack after the input, and the block goes on to `after` like a good one.
 */
function blockLoop(n: number, i: number, m: number, step: number[], after: number[] = []): number[] {
  return [
    op.block, VOID, op.loop, VOID,
    ...get(i), ...get(n), op.i32GeU, op.brIf, 1,
    ...step, ...s(simd.bitmask), op.localTee, m,
    op.if, VOID,
    ...get(i), ...get(m), op.i32Ctz, op.i32Add, ...set(m),
    ...get(m), ...get(n), op.i32LtU, op.if, VOID, ...get(m), op.return, op.end,
    op.end,
    ...after,
    ...get(i), ...i32(16), op.i32Add, ...set(i),
    op.br, 0, op.end, op.end,
    ...i32(-1),
  ];
}

function scanBody(): number[] {
  // params p=0 n=1; locals i=2 m=3 (i32), v=4 a=5 (v128)
  const step = [
    ...load(0, 2), op.localTee, 4, ...splat(0x41), ...s(simd.sub), ...set(5),
    ...symbolMask(4, 5), ...s(simd.not),
  ];
  return [...vec([[2, I32], [2, V128]]), ...blockLoop(1, 2, 3, step), op.end];
}

function cipherBody(direction: 'encrypt' | 'decrypt'): number[] {
  // params t=0 k=1 o=2 n=3; locals i=4 m=5 (i32); x=6 y=7 ax=8 ay=9 sum=10 (v128)
  const step = [
    ...load(0, 4), op.localTee, 6, ...splat(0x41), ...s(simd.sub), ...set(8),
    ...load(1, 4), op.localTee, 7, ...splat(0x41), ...s(simd.sub), ...set(9),
    ...symbolMask(6, 8), ...symbolMask(7, 9), ...s(simd.and), ...s(simd.not),
  ];
  // A symbol's value: 26 for space, its byte minus 'A' for a letter.
  const value = (v: number, a: number): number[] => [
    ...splat(26), ...get(a), ...get(v), ...splat(0x20), ...s(simd.eq), ...s(simd.bitselect),
  ];
  const combine =
    direction === 'encrypt'
      ? [...value(6, 8), ...value(7, 9), ...s(simd.add)]
      : [...value(6, 8), ...value(7, 9), ...s(simd.sub), ...splat(27), ...s(simd.add)];
  const store = [
    ...get(2), ...get(4), op.i32Add,
    // 0..52 into 0..26: the smaller of v and v - 27 as unsigned bytes, since v - 27 wraps when v < 27
    ...combine, ...set(10), ...get(10), ...get(10), ...splat(27), ...s(simd.sub), ...s(simd.minU), ...set(10),
    // back to a byte: space for 26, 'A' + value otherwise
    ...splat(0x20), ...get(10), ...splat(0x41), ...s(simd.add), ...get(10), ...splat(26), ...s(simd.eq),
    ...s(simd.bitselect),
    ...s(simd.store), 0, 0,
  ];
  return [...vec([[2, I32], [5, V128]]), ...blockLoop(3, 4, 5, step, store), op.end];
}

function symbolsBody(): number[] {
  // params p=0 n=1; local i=2 (i32); b=3 r=4 (v128)
  // b mod 27 for b < 243 as four conditional subtractions of 216, 108, 54 and 27
  const reduce = (c: number): number[] => [...get(4), ...get(4), ...splat(c), ...s(simd.sub), ...s(simd.minU), ...set(4)];
  return [
    ...vec([[1, I32], [2, V128]]),
    op.block, VOID, op.loop, VOID,
    ...get(2), ...get(1), op.i32GeU, op.brIf, 1,
    ...get(0), ...get(2), op.i32Add,
    ...load(0, 2), op.localTee, 3, ...set(4),
    ...reduce(216), ...reduce(108), ...reduce(54), ...reduce(27),
    ...splat(0x20), ...get(4), ...splat(0x41), ...s(simd.add), ...get(4), ...splat(26), ...s(simd.eq), ...s(simd.bitselect),
    ...get(3), ...splat(243), ...s(simd.ltU), ...s(simd.and),
    ...s(simd.store), 0, 0,
    ...get(2), ...i32(16), op.i32Add, ...set(2),
    op.br, 0, op.end, op.end,
    op.end,
  ];
}

/** Where the pack table lives in memory: after the three regions. */
const TABLE_AT = 3 * (REGION + SLACK);
/** Bytes of the pack table: eight lanes for each of 256 masks. */
const PACK_TABLE_SIZE = 256 * 8;

/**
 * For each 8-bit mask, the positions of its set bits in order, padded with zeros: the
 * shuffle that packs the kept lanes of half a block to its front.
 */
function packTable(): Uint8Array {
  const table = new Uint8Array(PACK_TABLE_SIZE);
  for (let mask = 0; mask < 256; mask++) {
    let k = 0;
    for (let bit = 0; bit < 8; bit++) if (mask & (1 << bit)) table[mask * 8 + k++] = bit;
  }
  return table;
}

function compactBody(table: number): number[] {
  // params p=0 n=1 o=2; locals i=3 m=4 j=5 (i32), v=6 (v128)
  /** Packs the kept lanes of one half of v (mask bits from `shift`) to memory[j...]; j moves on. */
  const half = (shift: number, lane0: number): number[] => {
    const bits = [...get(4), ...i32(shift), op.i32ShrU, ...i32(255), op.i32And];
    return [
      ...get(5), ...get(6),
      ...bits, ...i32(3), op.i32Shl, ...i32(table), op.i32Add, ...s(simd.load64Zero), 0, 0,
      ...splat(lane0), ...s(simd.add), ...s(simd.swizzle),
      ...s(simd.store), 0, 0,
      ...get(5), ...bits, op.i32Popcnt, op.i32Add, ...set(5),
    ];
  };
  return [
    ...vec([[3, I32], [1, V128]]),
    ...get(2), ...set(5),
    op.block, VOID, op.loop, VOID,
    ...get(3), ...get(1), op.i32GeU, op.brIf, 1,
    ...load(0, 3), op.localTee, 6, ...splat(0), ...s(simd.eq), ...s(simd.not), ...s(simd.bitmask), ...set(4),
    ...half(0, 0), ...half(8, 8),
    ...get(3), ...i32(16), op.i32Add, ...set(3),
    op.br, 0, op.end, op.end,
    ...get(5), ...get(2), op.i32Sub,
    op.end,
  ];
}

function assemble(pages: number, table: number): Uint8Array<ArrayBuffer> {
  const scanType = [0x60, ...vec([[I32], [I32]]), ...vec([[I32]])];
  const cipherType = [0x60, ...vec([[I32], [I32], [I32], [I32]]), ...vec([[I32]])];
  const symbolsType = [0x60, ...vec([[I32], [I32]]), ...vec([])];
  const compactType = [0x60, ...vec([[I32], [I32], [I32]]), ...vec([[I32]])];
  const bodies = [scanBody(), cipherBody('encrypt'), cipherBody('decrypt'), symbolsBody(), compactBody(table)];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([scanType, cipherType, symbolsType, compactType])),
    ...section(3, vec([[0], [1], [1], [2], [3]])),
    ...section(5, vec([[0x00, ...uleb(pages)]])),
    ...section(7, vec([
      [...name('memory'), 0x02, 0],
      [...name('scan'), 0x00, 0],
      [...name('encrypt'), 0x00, 1],
      [...name('decrypt'), 0x00, 2],
      [...name('symbols'), 0x00, 3],
      [...name('compact'), 0x00, 4],
    ])),
    ...section(10, vec(bodies.map((body) => [...uleb(body.length), ...body]))),
  ]);
}

/**
 * OTP_NO_SIMD=1 turns the kernels off, read once at start: every caller then takes its
 * plain loop, as on an engine without WebAssembly (`node --jitless`), so that the tests
 * can run those loops on any machine.
 */
const DISABLED = process.env.OTP_NO_SIMD === '1';

let kernels: Kernels | null | undefined;

/** The module, assembled from the opcodes above. */
export function kernelModuleBytes(): Uint8Array<ArrayBuffer> {
  return assemble(Math.ceil((TABLE_AT + PACK_TABLE_SIZE) / PAGE), TABLE_AT);
}

/**
 * kernelModuleBytes() as compileall made it, base64, when running as a built program:
 * assembling costs 7-9 ms at every start (the assembler runs once, cold), a quarter of
 * what a 1 MiB job costs beyond Node's start-up. Undefined when running from source.
 * test/kernels.test.ts checks that the bundles carry exactly what the assembler makes.
 */
declare const OTP_KERNELS_WASM: string | undefined;

function moduleBytes(): Uint8Array<ArrayBuffer> {
  return typeof OTP_KERNELS_WASM === 'string' ? new Uint8Array(Buffer.from(OTP_KERNELS_WASM, 'base64')) : kernelModuleBytes();
}

/** The kernels, or null where this engine has no WebAssembly SIMD or OTP_NO_SIMD=1. Built on first use. */
export function getKernels(): Kernels | null {
  if (kernels !== undefined) return kernels;
  if (DISABLED) return (kernels = null);
  const bytes = moduleBytes();
  if (typeof WebAssembly !== 'object' || !WebAssembly.validate(bytes)) return (kernels = null);
  const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as {
    memory: WebAssembly.Memory;
    scan: Kernels['scan'];
    encrypt: Kernels['encrypt'];
    decrypt: Kernels['decrypt'];
    symbols: Kernels['symbols'];
    compact: Kernels['compact'];
  };
  const memory = Buffer.from(exports.memory.buffer);
  memory.set(packTable(), TABLE_AT);
  return (kernels = {
    memory,
    a: 0,
    b: REGION + SLACK,
    out: 2 * (REGION + SLACK),
    scan: exports.scan,
    encrypt: exports.encrypt,
    decrypt: exports.decrypt,
    symbols: exports.symbols,
    compact: exports.compact,
  });
}
