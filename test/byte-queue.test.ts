// ByteQueue against a plain model: any pushes and takes give the bytes back in order, and the pieces stay few.
import assert from 'node:assert/strict';
import t from 'tap';
import fc from 'fast-check';
import { ByteQueue, GATHER_BELOW, GATHER_SIZE } from '../src/streams/byte-queue.js';
import { holds, takeAgainstModel } from './helpers/streams.js';

/** A push of a piece of `size` bytes, or a take of up to `size` bytes from the front. */
const step = fc.oneof(
  fc.record({ push: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: GATHER_BELOW - 2, max: GATHER_BELOW + 2 }), fc.integer({ min: 1, max: 3 * GATHER_SIZE })) }),
  fc.record({ take: fc.integer({ min: 1, max: 3 * GATHER_SIZE }) }),
);

t.test('bytes come out in the order they went in, however pushed and taken', async (t) => {
  await holds(
    t,
    'the queue matches a model byte for byte, and its pieces are bounded by its bytes',
    fc.asyncProperty(fc.array(step, { maxLength: 60 }), async (steps) => {
      const queue = new ByteQueue();
      let model: Buffer = Buffer.alloc(0);
      let next = 0;
      for (const s of steps) {
        if ('push' in s) {
          const piece = Buffer.allocUnsafe(s.push);
          for (let i = 0; i < piece.length; i++) piece[i] = next++ & 0xff;
          queue.push(piece);
          model = Buffer.concat([model, piece]);
        } else {
          model = takeAgainstModel(queue, model, s.take);
        }
        assert.equal(queue.bytes, model.length);
        // An entry is a large piece, a gathered buffer at least a quarter full, the small
        // gathering before a large piece, or one of the two partly used ends.
        assert.ok(queue.pieces <= 2 + 2 * Math.ceil(queue.bytes / GATHER_BELOW), `${queue.pieces} pieces for ${queue.bytes} bytes`);
      }
      assert.equal(queue.front().length === 0, model.length === 0);
    }),
    { numRuns: 300 },
  );
});

t.test('a million one-byte pieces are a few dozen entries', async (t) => {
  const queue = new ByteQueue();
  const one = Buffer.from('A');
  for (let i = 0; i < 1 << 20; i++) queue.push(one);
  t.equal(queue.bytes, 1 << 20);
  t.equal(queue.pieces, (1 << 20) / GATHER_SIZE);
});
