// The client's check of its server's reply, in-process: every byte value, and any cut of a reply into frames.
import fc from 'fast-check';
import t from 'tap';
import { ReplyCheck } from '../src/client/reply-check.js';

const ABC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ ';

/** 'sent 9 symbols for a 36-symbol text' (or 'an 8-symbol text'). */
function says(fault: string, sent: number, total: number): boolean {
  return new RegExp(`^sent ${sent} symbols for an? ${total}-symbol text$`).test(fault);
}

function fixed(total: number): ReplyCheck {
  return new ReplyCheck({ sent: () => total, total: () => total });
}

t.test('every byte value, at the start, inside and at the end of a payload', (t) => {
  let wrong = 0;
  for (let byte = 0; byte < 256; byte++) {
    const symbol = ABC.includes(String.fromCharCode(byte));
    for (const at of [0, 3, 7]) {
      const payload = Buffer.from('QWERTYUI', 'latin1');
      payload[at] = byte;
      const check = fixed(8);
      const fault = check.result(payload);
      const ok = symbol ? fault === null && check.received === 8 : fault !== null && fault.endsWith(`as symbol ${at + 1}, which is not a symbol`) && check.received === 0;
      if (!ok) wrong++;
    }
  }
  t.equal(wrong, 0, 'symbols pass, every other byte is refused at its position, and nothing is counted for it');
  const big = Buffer.alloc(100_000, 'A');
  big[77_777] = 0x61;
  t.match(fixed(100_000).result(big), /as symbol 77778, which is not a symbol$/, 'in a payload long enough for the SIMD scan too');
  t.end();
});

t.test('any cut of a reply into frames: accepted up to the text, refused past it, done only when whole', (t) => {
  fc.assert(
    // The text's length near the reply's, where off-by-ones live.
    fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { maxLength: 8 }), fc.integer({ min: -3, max: 3 }), (sizes, near) => {
      const total = Math.max(0, sizes.reduce((a, b) => a + b, 0) + near);
      const check = fixed(total);
      let received = 0;
      for (const size of sizes) {
        const fault = check.result(Buffer.alloc(size, 'B'));
        if (received + size > total) return fault !== null && says(fault, received + size, total) && check.received === received;
        if (fault !== null) return false;
        received += size;
      }
      const done = check.done();
      return received === total ? done === null : done !== null && says(done, received, total);
    }),
  );
  t.end();
});

t.test('a stream: never more than was sent so far, and DONE only after its end', (t) => {
  let sent = 5;
  let ended = false;
  const check = new ReplyCheck({ sent: () => sent, total: () => (ended ? sent : null) });
  t.equal(check.result(Buffer.from('ABCDE')), null, 'as much as was sent');
  t.equal(check.result(Buffer.from('F')), 'sent 6 symbols for the first 5 of the text', 'one more is refused');
  sent = 9;
  t.equal(check.result(Buffer.from('FGHI')), null, 'more once more was sent');
  t.equal(check.done(), 'sent DONE after 9 symbols, before the end of the text', 'DONE before the end');
  ended = true;
  t.equal(check.done(), null, 'DONE after the end, with every symbol');
  t.end();
});
