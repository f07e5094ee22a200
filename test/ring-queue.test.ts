// RingQueue against a plain model: any pushes that fit and any takes give the bytes back in order, whatever the wrap.
import assert from 'node:assert/strict';
import t from 'tap';
import fc from 'fast-check';
import { MIN_RING, RingQueue } from '../src/cipher/ring-queue.js';
import { holds, takeAgainstModel } from './helpers/streams.js';

const CAPACITY = 64;

type Step = { push: number } | { take: number };

/**
 * Runs `steps` on `ring` and on a plain model side by side: each push a piece of the next
 * counting bytes (as much of it as there is room for), scribbled over once pushed, since
 * its caller reuses it at once; each take checked against the model. After every step the
 * ring holds what the model does, and `check` looks at whatever else.
 */
function play(ring: RingQueue, steps: Step[], check: (model: Buffer) => void): void {
  let model: Buffer = Buffer.alloc(0);
  let next = 0;
  for (const s of steps) {
    if ('push' in s) {
      const piece = Buffer.allocUnsafe(Math.min(s.push, ring.room));
      for (let i = 0; i < piece.length; i++) piece[i] = next++ & 0xff;
      ring.push(piece);
      model = Buffer.concat([model, piece]);
      piece.fill(0);
    } else {
      model = takeAgainstModel(ring, model, s.take);
    }
    assert.equal(ring.bytes, model.length);
    check(model);
  }
}

const step = fc.oneof(fc.record({ push: fc.integer({ min: 0, max: CAPACITY }) }), fc.record({ take: fc.integer({ min: 1, max: CAPACITY }) }));

t.test('bytes come out in the order they went in, and a pushed piece is copied', async (t) => {
  await holds(
    t,
    'the ring matches a model byte for byte, through every wrap',
    fc.asyncProperty(fc.array(step, { maxLength: 80 }), async (steps) => {
      const ring = new RingQueue(CAPACITY, { take: (size) => Buffer.allocUnsafe(size), give: (b) => b.fill(0xee) });
      play(ring, steps, (model) => {
        assert.equal(ring.room, CAPACITY - model.length);
        assert.ok(ring.pieces <= 2);
      });
    }),
    { numRuns: 500 },
  );
});

t.test('a piece larger than the room is refused, and nothing is taken in', async (t) => {
  const ring = new RingQueue(8);
  ring.push(Buffer.from('ABCDE'));
  t.throws(() => ring.push(Buffer.from('FGHI')), RangeError);
  t.equal(ring.bytes, 5);
  t.equal(ring.front().toString(), 'ABCDE');
});

t.test('a ring that grows while it holds bytes, wrapped or not, keeps them in order and gives back what it left', async (t) => {
  const capacity = 4 * MIN_RING;
  const grow = fc.oneof(fc.record({ push: fc.integer({ min: 0, max: 2 * MIN_RING }) }), fc.record({ take: fc.integer({ min: 1, max: 2 * MIN_RING }) }));
  await holds(
    t,
    'the model byte for byte; MIN_RING, then the whole capacity; every buffer given back scribbled at once',
    fc.asyncProperty(fc.array(grow, { maxLength: 40 }), async (steps) => {
      const out = new Set<Buffer>();
      const sizes: number[] = [];
      const ring = new RingQueue(capacity, {
        take: (size) => {
          sizes.push(size);
          const b = Buffer.allocUnsafe(size);
          out.add(b);
          return b;
        },
        give: (b) => {
          assert.ok(out.delete(b), 'a buffer given back that the ring did not take, or twice');
          b.fill(0xee);
        },
      });
      play(ring, steps, () => assert.ok(out.size <= 1, 'one buffer at a time'));
      for (const size of sizes) assert.ok(size === MIN_RING || size === capacity, `a ring of ${size} bytes`);
      assert.ok(sizes.length <= 2 || sizes.every((size, i) => i === 0 || size >= sizes[i - 1] || size === MIN_RING), 'a ring only grows while it holds bytes');
      ring.release();
      assert.equal(out.size, 0, 'release gives the last buffer back');
    }),
    { numRuns: 300 },
  );
});
