// RingQueue against a plain model: any pushes that fit and any takes give the bytes back in order, whatever the wrap.
import assert from 'node:assert/strict';
import t from 'tap';
import fc from 'fast-check';
import { RingQueue } from '../src/streams/ring-queue.js';
import { holds, takeAgainstModel } from './helpers/streams.js';

const CAPACITY = 64;

const step = fc.oneof(fc.record({ push: fc.integer({ min: 0, max: CAPACITY }) }), fc.record({ take: fc.integer({ min: 1, max: CAPACITY }) }));

t.test('bytes come out in the order they went in, and a pushed piece is copied', async (t) => {
  await holds(
    t,
    'the ring matches a model byte for byte, through every wrap',
    fc.asyncProperty(fc.array(step, { maxLength: 80 }), async (steps) => {
      const ring = new RingQueue(Buffer.allocUnsafe(CAPACITY));
      let model: Buffer = Buffer.alloc(0);
      let next = 0;
      for (const s of steps) {
        if ('push' in s) {
          const piece = Buffer.allocUnsafe(Math.min(s.push, ring.room));
          for (let i = 0; i < piece.length; i++) piece[i] = next++ & 0xff;
          ring.push(piece);
          model = Buffer.concat([model, piece]);
          // The caller reuses its buffer at once: the ring must hold its own copy.
          piece.fill(0);
        } else {
          model = takeAgainstModel(ring, model, s.take);
        }
        assert.equal(ring.bytes, model.length);
        assert.equal(ring.room, CAPACITY - model.length);
        assert.ok(ring.pieces <= 2);
      }
    }),
    { numRuns: 500 },
  );
});

t.test('a piece larger than the room is refused, and nothing is taken in', async (t) => {
  const ring = new RingQueue(Buffer.allocUnsafe(8));
  ring.push(Buffer.from('ABCDE'));
  t.throws(() => ring.push(Buffer.from('FGHI')), RangeError);
  t.equal(ring.bytes, 5);
  t.equal(ring.front().toString(), 'ABCDE');
});
