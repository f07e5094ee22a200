// What a finished job means to its user (src/client/verdict.ts), for every error code a server may send and every way a reply can fail.
import t from 'tap';
import { UserError } from '../src/cli/errors.js';
import { ErrorCode } from '../src/protocol/frames.js';
import { verdict, type JobSeen } from '../src/client/verdict.js';

const names = { program: 'enc_client', server: 'enc_server', where: 'on port 5000', host: '127.0.0.1' };
const nothing: JobSeen = {
  inputFailure: null,
  done: false,
  tls: false,
  opening: null,
  replyFault: null,
  malformed: false,
  cutShort: false,
  foreign: false,
  serverError: null,
  connectionError: null,
};
const seen = (what: Partial<JobSeen>): JobSeen => ({ ...nothing, ...what });

t.test('every error code a server may send: the input\'s fault (4 to 7) is exit 1, anything else exit 2', async (t) => {
  const input = new Set<number>([ErrorCode.BAD_TEXT, ErrorCode.BAD_KEY, ErrorCode.KEY_SHORT, ErrorCode.KEY_LAG]);
  let wrong = 0;
  for (let code = 0; code < 256; code++) {
    const v = verdict(seen({ serverError: { code, message: 'why' } }), names);
    if (!v || v.exitCode !== (input.has(code) ? 1 : 2)) wrong++;
  }
  t.equal(wrong, 0, 'all 256 codes');
  t.same(verdict(seen({ serverError: { code: ErrorCode.ROLE, message: '' } }), names), { message: 'the server on port 5000 rejected enc_client: it is not an enc_server', exitCode: 2 });
  t.same(verdict(seen({ serverError: { code: ErrorCode.BUSY, message: '' } }), names), { message: 'server busy: the enc_server on port 5000 is at its limit; try again later', exitCode: 2 });
  t.same(verdict(seen({ serverError: { code: ErrorCode.TLS_REQUIRED, message: '' } }), names), { message: 'cannot use the enc_server on port 5000: the server requires TLS (use --tls, or --tls-ca FILE)', exitCode: 2 });
  t.same(verdict(seen({ serverError: { code: ErrorCode.BAD_KEY, message: 'bad character' } }), names), { message: 'the server failed the job: bad character', exitCode: 1 });
});

t.test('the order in which causes are judged', async (t) => {
  t.equal(verdict(seen({ done: true }), names), null, 'DONE after every symbol: success');
  t.same(verdict(seen({ done: true, inputFailure: new UserError('bad input') }), names), { message: 'bad input', exitCode: 1 }, 'a failed input first, even after DONE');
  t.same(verdict(seen({ inputFailure: new Error('EIO: i/o error, read') }), names), { message: 'i/o error', exitCode: 1 }, 'a system error in its own words');
  t.match(verdict(seen({ opening: Buffer.from([21, 3]), serverError: { code: 1, message: 'x' } }), names)?.message, /requires TLS/, 'a TLS record where frames were expected');
  t.equal(verdict(seen({ tls: true, opening: Buffer.from([21, 3]), malformed: true }), names)?.message, 'the server on port 5000 does not speak the otp protocol: is it an enc_server?', 'not over TLS');
  t.same(verdict(seen({ replyFault: 'sent 40 symbols for a 36-symbol text', serverError: { code: 4, message: 'x' } }), names), { message: 'the enc_server on port 5000 sent 40 symbols for a 36-symbol text', exitCode: 2 }, "the client's check before the server's word");
  t.match(verdict(seen({ foreign: true }), names)?.message, /does not speak the otp protocol/, 'a foreign frame');
  t.match(verdict(seen({ malformed: true, cutShort: true, serverError: { code: 4, message: 'x' } }), names)?.message, /the connection closed before the result was complete$/, 'cut short: broken, whatever came');
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5000'), { code: 'ECONNREFUSED' });
  t.same(verdict(seen({ connectionError: refused }), names), { message: 'cannot use the enc_server on port 5000: connection refused (is enc_server running there?)', exitCode: 2 });
});
