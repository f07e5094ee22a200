// The server's log is safe: whatever a client sends, one printable line per event, the
// peer named by its address (IPv4 as 127.0.0.1:P, IPv6 as [::1]:P), a client's ERROR
// frame never echoed back, and the bytes counted are the bytes read.
import t from 'tap';
import { ErrorCode, FrameType } from '../src/protocol/frames.js';
import { startServer } from './helpers/programs.js';
import { canConnect, errorCode, exchange, frame, frameTypes, hello, linesFor, waitUntil } from './helpers/wire.js';

const { TEXT, KEY, ERROR, END } = FrameType;

t.test("a client's ERROR frame: one escaped log line, no echo", async (t) => {
  const server = await startServer('enc_server', ['--workers', '1']);
  t.teardown(() => server.stop());
  const forged = 'bye\nenc_server: worker 4242 was killed by SIGKILL; starting another\x1b[2J\x1b]0;owned\x07\u202e\\x41';
  const message = Buffer.concat([Buffer.from([ErrorCode.PROTOCOL]), Buffer.from(forged)]);
  const cases = [
    { what: 'a forged line and terminal escapes', input: [hello(), frame(TEXT, 'AB'), frame(KEY, 'AB'), frame(ERROR, message)], logged: 'bye\\nenc_server: worker 4242 was killed by SIGKILL; starting another\\x1b[2J\\x1b]0;owned\\x07\\u{202e}\\\\x41' },
    { what: 'an empty ERROR payload', input: [hello(), frame(ERROR)], logged: '(no message)' },
  ];
  for (const c of cases) {
    const before = server.stderr().length;
    const reply = await exchange(server.port, c.input);
    t.notOk(reply.malformed, `${c.what}: the reply is well-formed frames`);
    t.equal(frameTypes(reply).at(-1), ERROR, `${c.what}: it ends with an ERROR frame of the server's own`);
    t.equal(reply.frames.at(-1)?.payload.subarray(1).toString(), 'the client abandoned the job', `${c.what}: which says so`);
    t.notOk(reply.bytes.includes(Buffer.from('bye')), `${c.what}: nothing the client said comes back`);
    await waitUntil(() => linesFor(server.stderr().slice(before), reply.localPort).length > 0, 10_000, `${c.what}: the log line`);
    const added = server.stderr().slice(before);
    t.match(added, /^enc_server: [^\n]+\n$/, `${c.what}: exactly one line`);
    t.notOk(/[\x00-\x09\x0b-\x1f\x7f\u202e]/.test(added), `${c.what}: nothing unprintable in it`);
    t.ok(added.includes(`abandoned by the client: ${c.logged}`), `${c.what}: the message escaped: ${added.trim()}`);
  }
});

t.test('the bytes counted are the bytes read, HELLO included', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1', '--verbose']);
  t.teardown(() => server.stop());
  // A job that does not come whole (no END) goes through the pipeline: the count is its socket's.
  const input = [hello(), frame(TEXT, 'ABC'), frame(KEY, 'ABC', 10)];
  const reply = await exchange(server.port, input);
  t.equal(errorCode(reply), ErrorCode.PROTOCOL, 'cut short: PROTOCOL');
  await waitUntil(() => linesFor(server.stderr(), reply.localPort).length > 0, 10_000, 'the log line');
  const sent = Buffer.concat(input).length;
  t.match(linesFor(server.stderr(), reply.localPort)[0], new RegExp(`: enc_client, ${sent} bytes in, `), `${sent} bytes in`);
  const wholeInput = [hello(), frame(TEXT, 'ABC'), frame(KEY, 'ABC'), frame(END)];
  const whole = await exchange(server.port, wholeInput);
  await waitUntil(() => linesFor(server.stderr(), whole.localPort).length > 0, 10_000, 'the log line');
  const wholeSent = Buffer.concat(wholeInput).length;
  t.match(linesFor(server.stderr(), whole.localPort)[0], new RegExp(`: enc_client, ${wholeSent} bytes in, 3 symbols out, \\d+ ms, ok$`), `a whole job: ${wholeSent} bytes in, ok`);
});

t.test('an IPv6 peer is logged as [::1]:PORT', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1'], {}, { host: '::1' }).catch(() => null);
  if (!server) return void t.comment('no IPv6 loopback here: skipped');
  t.teardown(() => server.stop());
  t.ok(await canConnect(server.port, '::1'), 'listening on ::1');
  const reply = await exchange(server.port, [Buffer.from('junk')], { host: '::1' });
  await waitUntil(() => server.stderr().includes(`[::1]:${reply.localPort}: `), 10_000, 'the log line');
  t.match(server.stderr(), new RegExp(`^enc_server: \\[::1\\]:${reply.localPort}: dropped: the first frame is of type 106, not HELLO\\n$`), 'one line, the peer in brackets');
  t.notOk(server.stderr().includes('undefined'), 'never undefined:undefined');
});
