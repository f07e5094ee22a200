import fc from 'fast-check';
import t from 'tap';
import { ErrorCode, FrameType, MAX_CONTROL_PAYLOAD, errorFrame, parseError } from '../src/protocol.js';

t.test('an ERROR frame carries its code and message, and fits a control frame', async (t) => {
  const frame = errorFrame(ErrorCode.ROLE, 'this server does not serve your role');
  t.equal(frame.type, FrameType.ERROR);
  t.same(parseError(frame.payload), { code: ErrorCode.ROLE, message: 'this server does not serve your role' });
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 2 * MAX_CONTROL_PAYLOAD, size: 'max' }), (message) => {
      const { payload } = errorFrame(ErrorCode.PROTOCOL, message);
      const back = parseError(payload).message;
      // Within the limit, never a split character (which would decode to U+FFFD), and a
      // prefix of the message: cut only where it had to be.
      return (
        payload.length <= MAX_CONTROL_PAYLOAD &&
        !back.includes('\ufffd') === !message.includes('\ufffd') &&
        message.startsWith(back) &&
        (back === message || Buffer.byteLength(back) > MAX_CONTROL_PAYLOAD - 1 - 4)
      );
    }),
    { numRuns: 300, endOnFailure: true },
  );
  t.pass('any message: within the limit, cut only at a character boundary, only when too long');
});
