// The compaction kernel keygen uses: every one of the 65536 patterns of kept and dropped lanes in a block.
import t from 'tap';
import { getKernels, REGION } from '../src/simd/kernels.js';

t.test('compact keeps the non-zero bytes in order, for every 16-lane pattern', async (t) => {
  const kernels = getKernels();
  if (!kernels) {
    t.pass('no WebAssembly SIMD here: keygen uses the plain loop');
    return;
  }
  // Block b keeps lane l when bit l of b is set: 65536 blocks of 16 bytes, one REGION.
  t.equal(65536 * 16, REGION);
  const input = Buffer.alloc(REGION);
  for (let b = 0; b < 65536; b++) {
    for (let l = 0; l < 16; l++) if (b & (1 << l)) input[b * 16 + l] = 1 + ((b * 7 + l) % 255);
  }
  const want = input.filter((byte) => byte !== 0);
  kernels.memory.set(input, kernels.a);
  const got = kernels.compact(kernels.a, REGION, kernels.out);
  t.equal(got, want.length, 'as many bytes as are not 0');
  t.ok(Buffer.from(want).equals(kernels.memory.subarray(kernels.out, kernels.out + got)), 'the same bytes in the same order');
  t.equal(kernels.compact(kernels.a, 0, kernels.out), 0, 'nothing from nothing');
  kernels.memory.fill(0, kernels.a, kernels.a + 4096);
  t.equal(kernels.compact(kernels.a, 4096, kernels.out), 0, 'nothing from zeros');
});
