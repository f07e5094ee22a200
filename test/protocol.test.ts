import fc from 'fast-check';
import t from 'tap';
import { ErrorCode, FrameType, MAX_CONTROL_PAYLOAD, errorFrame, parseError } from '../src/protocol/frames.js';

t.test('an ERROR frame carries its code and message, and fits a control frame', async (t) => {
  const frame = errorFrame(ErrorCode.ROLE, 'this server does not serve your role');
  t.equal(frame.type, FrameType.ERROR);
  t.same(parseError(frame.payload), { code: ErrorCode.ROLE, message: 'this server does not serve your role' });
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 2 * MAX_CONTROL_PAYLOAD, size: 'max' }), (message) => {
      const { payload } = errorFrame(ErrorCode.PROTOCOL, message);
      // Compared as bytes: the message itself may hold U+FFFD, so the decoded text cannot
      // tell a split character from one that was there.
      const whole = Buffer.from(message);
      const kept = payload.subarray(1);
      const cut = kept.length < whole.length;
      return (
        payload.length <= MAX_CONTROL_PAYLOAD &&
        payload[0] === ErrorCode.PROTOCOL &&
        // a byte prefix of the message...
        whole.subarray(0, kept.length).equals(kept) &&
        // ...cut only where it had to be (a UTF-8 character is at most 4 bytes)...
        (!cut || kept.length > MAX_CONTROL_PAYLOAD - 1 - 4) &&
        // ...and only at a character boundary: the first byte left out starts a character.
        (!cut || (whole[kept.length] & 0xc0) !== 0x80)
      );
    }),
    { numRuns: 300, endOnFailure: true },
  );
  t.pass('any message: within the limit, a byte prefix cut only at a character boundary, only when too long');
});
