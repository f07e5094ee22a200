// Bad input over the wire against a live enc_server: each fault gets the ERROR frame the
// protocol gives it (from the main process for HELLO problems, from the worker for the
// rest), the connection is closed, the server logs exactly one line for it, and a real
// enc_client round trip still works afterwards. Then fast-check throws garbage and
// malformed frame sequences at one server, with a good job after every run.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { CIPHER_WINDOW, ErrorCode, FrameType, MAX_CONTROL_PAYLOAD, MAX_PAYLOAD, Role } from '../src/protocol/frames.js';
import { run, startServer, type Server } from './helpers/programs.js';
import {
  ABC,
  childrenOf,
  errorCode,
  exchange,
  frame,
  frameTypes,
  hello,
  linesFor,
  model,
  randomSymbols,
  rawRoundTrip,
  tempDir,
  resultText,
  waitUntil,
  type Reply,
} from './helpers/wire.js';

const { HELLO, TEXT, KEY, END, RESULT, DONE, ERROR } = FrameType;
/** Short enough that a stuck connection fails a test in seconds, long enough for a loaded machine. */
const ENV = { OTP_HANDSHAKE_TIMEOUT_MS: '5000', OTP_IDLE_TIMEOUT_MS: '5000' };

interface Case {
  name: string;
  chunks: Buffer[];
  code: number;
  /** Who answers: the main process (one ERROR frame, nothing else) or a worker. */
  by: 'main' | 'worker';
  message: RegExp;
  /** What the RESULT frames before the ERROR may hold at most: they must be a prefix of it (default none). */
  result?: string;
  /**
   * How many of those symbols must have come (default all): the cipher drops the stretch
   * a bad byte arrives in, so a bad character's case says how many came before it.
   */
  sent?: number;
}

/** The 4 KiB of random bytes, with a first byte that is not HELLO. */
const garbage = randomBytes(4096);
garbage[0] = 0xab;
/** Random bytes after a good HELLO, starting with an undefined frame type. */
const garbageAfterHello = randomBytes(4096);
garbageAfterHello[0] = 0xee;

const big = (n: number): string => 'A'.repeat(n);

const cases: Case[] = [
  { name: 'random bytes', chunks: [garbage], by: 'main', code: ErrorCode.PROTOCOL, message: /first frame is of type 171, not HELLO/ },
  { name: 'random bytes after a good HELLO', chunks: [hello(), garbageAfterHello], by: 'worker', code: ErrorCode.PROTOCOL, message: /type 238/ },
  { name: 'truncated HELLO, then close', chunks: [Buffer.from([HELLO, 0, 0])], by: 'main', code: ErrorCode.PROTOCOL, message: /closed before its HELLO/ },
  {
    name: 'truncated TEXT payload, then close',
    chunks: [hello(), frame(TEXT, 'ABCDEFGHIJ', 100)],
    by: 'worker',
    code: ErrorCode.PROTOCOL,
    message: /ended inside a frame/,
  },
  { name: 'truncated header, then close', chunks: [hello(), Buffer.from([TEXT, 0, 0])], by: 'worker', code: ErrorCode.PROTOCOL, message: /ended inside a frame/ },
  { name: 'unknown frame type after a good HELLO', chunks: [hello(), frame(0x42)], by: 'worker', code: ErrorCode.PROTOCOL, message: /unexpected frame of type 66/ },
  {
    name: 'a second HELLO',
    chunks: [hello(), frame(TEXT, 'AB'), frame(KEY, 'AB'), hello()],
    by: 'worker',
    code: ErrorCode.PROTOCOL,
    message: /unexpected frame of type 1\b/,
    result: model('encrypt', 'AB', 'AB'),
  },
  { name: 'a RESULT frame from the client', chunks: [hello(), frame(RESULT, 'AB')], by: 'worker', code: ErrorCode.PROTOCOL, message: /unexpected frame of type 5/ },
  { name: 'wrong protocol version (2)', chunks: [hello(Role.ENCRYPT, 2), frame(END)], by: 'main', code: ErrorCode.VERSION, message: /protocol version 2/ },
  { name: 'wrong protocol version (0)', chunks: [hello(Role.ENCRYPT, 0)], by: 'main', code: ErrorCode.VERSION, message: /protocol version 0/ },
  { name: 'wrong role (dec_client)', chunks: [hello(Role.DECRYPT), frame(TEXT, 'AB'), frame(KEY, 'AB'), frame(END)], by: 'main', code: ErrorCode.ROLE, message: /does not serve your role/ },
  { name: 'unknown role', chunks: [hello(0x58)], by: 'main', code: ErrorCode.ROLE, message: /does not serve your role/ },
  { name: 'HELLO too short', chunks: [frame(HELLO, Buffer.from([1]))], by: 'main', code: ErrorCode.PROTOCOL, message: /HELLO frame of 1 bytes/ },
  {
    name: 'HELLO length 0xFFFFFFF0',
    chunks: [Buffer.from([HELLO, 0xff, 0xff, 0xff, 0xf0, 1, 0x45])],
    by: 'main',
    code: ErrorCode.PROTOCOL,
    message: /HELLO frame of 4294967280 bytes/,
  },
  {
    name: 'TEXT length 0xFFFFFFF0',
    chunks: [hello(), Buffer.from([TEXT, 0xff, 0xff, 0xff, 0xf0]), randomBytes(1000)],
    by: 'worker',
    code: ErrorCode.PROTOCOL,
    message: /frame of type 2 is 4294967280 bytes long; the limit is 1048576/,
  },
  {
    name: 'KEY one byte over the limit',
    chunks: [hello(), Buffer.from([KEY, 0, 0x10, 0, 1])],
    by: 'worker',
    code: ErrorCode.PROTOCOL,
    message: new RegExp(`is ${MAX_PAYLOAD + 1} bytes long`),
  },
  {
    name: 'END one byte over the control limit',
    chunks: [hello(), frame(END, Buffer.alloc(MAX_CONTROL_PAYLOAD + 1))],
    by: 'worker',
    code: ErrorCode.PROTOCOL,
    message: /limit is 1024/,
  },
  {
    name: 'bad character in TEXT',
    chunks: [hello(), frame(TEXT, 'HELLO world'), frame(KEY, 'ABCDEFGHIJK'), frame(END)],
    by: 'worker',
    code: ErrorCode.BAD_TEXT,
    message: /'w' \(0x77\) in the text at symbol 7/,
    result: model('encrypt', 'HELLO ', 'ABCDEF'),
    sent: 0,
  },
  {
    name: 'newline in TEXT',
    chunks: [hello(), frame(TEXT, 'AB\n'), frame(KEY, 'ABC'), frame(END)],
    by: 'worker',
    code: ErrorCode.BAD_TEXT,
    message: /newline \(0x0a\) in the text at symbol 3/,
    result: model('encrypt', 'AB', 'AB'),
    sent: 0,
  },
  {
    name: 'bad character in KEY, after good symbols',
    chunks: [hello(), frame(TEXT, 'ABCDEF'), frame(KEY, 'ABC'), frame(KEY, 'D\x00F'), frame(END)],
    by: 'worker',
    code: ErrorCode.BAD_KEY,
    message: /0x00 in the key at symbol 5/,
    result: model('encrypt', 'ABCD', 'ABCD'),
    sent: 3,
  },
  { name: 'TEXT with no KEY, then END', chunks: [hello(), frame(TEXT, 'HELLO'), frame(END)], by: 'worker', code: ErrorCode.KEY_SHORT, message: /0 symbols for a 5-symbol text/ },
  {
    name: 'KEY shorter than TEXT, then END',
    chunks: [hello(), frame(TEXT, 'HELLO WORLD'), frame(KEY, 'ABCDE'), frame(END)],
    by: 'worker',
    code: ErrorCode.KEY_SHORT,
    message: /: 5 symbols for an 11-symbol text$/,
    result: model('encrypt', 'HELLO', 'ABCDE'),
  },
  {
    name: 'text one byte more than CIPHER_WINDOW ahead of the key',
    chunks: [hello(), frame(TEXT, big(CIPHER_WINDOW)), frame(TEXT, 'A')],
    by: 'worker',
    code: ErrorCode.KEY_LAG,
    message: new RegExp(`the text ran more than ${CIPHER_WINDOW} bytes ahead`),
  },
  {
    name: 'key one byte more than CIPHER_WINDOW ahead of the text',
    chunks: [hello(), frame(TEXT, 'AB'), frame(KEY, 'AB'), frame(KEY, big(CIPHER_WINDOW)), frame(KEY, 'A')],
    by: 'worker',
    code: ErrorCode.KEY_LAG,
    message: new RegExp(`the key ran more than ${CIPHER_WINDOW} bytes ahead`),
    result: model('encrypt', 'AB', 'AB'),
  },
];

/** The new part of the server's stderr is exactly one line, naming this connection. */
async function oneLogLine(t: Test, server: Server, before: number, reply: Reply, what: string): Promise<void> {
  await waitUntil(() => linesFor(server.stderr().slice(before), reply.localPort).length > 0, 5_000, `${what}: a log line`);
  const added = server.stderr().slice(before);
  t.match(added, /^enc_server: [^\n]+\n$/, `${what}: the server logs exactly one line`);
  t.equal(linesFor(added, reply.localPort).length, 1, `${what}: the line names the peer 127.0.0.1:${reply.localPort}`);
  t.notOk(added.includes('    at '), `${what}: no stack trace`);
}

t.test('each bad input gets its ERROR frame, closes, logs one line, and the server goes on', async (t) => {
  const server = await startServer('enc_server', [], ENV);
  t.teardown(() => server.stop());
  const dir = tempDir(t);
  const text = randomSymbols(500);
  const key = randomSymbols(520);
  writeFileSync(join(dir, 'text'), `${text}\n`);
  writeFileSync(join(dir, 'key'), `${key}\n`);
  const expected = `${model('encrypt', text, key)}\n`;

  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const before = server.stderr().length;
      const reply = await exchange(server.port, c.chunks);
      t.notOk(reply.malformed, 'the reply is well-formed frames');
      t.ok(reply.endedByServer, 'the server closes the connection');
      t.equal(errorCode(reply), c.code, `the last frame is ERROR code ${c.code}`);
      const last = reply.frames.at(-1);
      if (last) t.match(last.payload.subarray(1).toString(), c.message, 'the ERROR message says what went wrong');
      if (c.by === 'main') {
        t.same(frameTypes(reply), [ERROR], 'the main process answers with one ERROR frame and nothing else');
      } else {
        t.same(frameTypes(reply).slice(0, -1).filter((type) => type !== RESULT), [], 'only RESULT frames come before the ERROR');
        const got = resultText(reply);
        const most = c.result ?? '';
        const least = c.sent ?? most.length;
        t.ok(most.startsWith(got) && got.length >= least, `the RESULT symbols '${got}': the first ${least} to ${most.length} of '${most}'`);
      }
      await oneLogLine(t, server, before, reply, c.name);
      const after = await run('enc_client', [join(dir, 'text'), join(dir, 'key'), String(server.port)]);
      t.equal(after.code, 0, 'enc_client afterwards exits 0');
      t.equal(after.stdout.toString(), expected, 'enc_client afterwards gets the right ciphertext');
    });
  }

  await t.test('the text exactly CIPHER_WINDOW ahead is still served', async (t) => {
    const long = randomSymbols(CIPHER_WINDOW);
    const pad = randomSymbols(CIPHER_WINDOW);
    const before = server.stderr().length;
    const reply = await exchange(server.port, [hello(), frame(TEXT, long), frame(KEY, pad), frame(END)]);
    t.equal(frameTypes(reply).at(-1), DONE, 'DONE');
    t.ok(resultText(reply) === model('encrypt', long, pad), 'the result is right');
    t.equal(server.stderr().slice(before), '', 'nothing logged for a good job');
  });

  t.equal(childrenOf(server.child.pid!).length, 5, 'five workers at the end');
});

/** Symbols, or arbitrary bytes, as a frame payload. */
const payloadArb = fc.oneof(
  fc.string({ unit: fc.constantFrom(...ABC), maxLength: 300 }).map((s) => Buffer.from(s, 'latin1')),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
);
/** A frame of any type, mostly defined ones, sometimes lying about its length. */
const frameArb = fc
  .record({
    type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(TEXT, KEY, TEXT, KEY, END, HELLO, RESULT, DONE, ERROR) }, fc.integer({ min: 0, max: 255 })),
    payload: payloadArb,
    length: fc.option(fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.constant(0xfffffff0), fc.nat({ max: 0xffffffff })), { freq: 5 }),
  })
  .map(({ type, payload, length }) => frame(type, payload, length ?? undefined));
const startArb = fc.constantFrom(hello(), hello(), hello(), hello(Role.DECRYPT), hello(Role.ENCRYPT, 9), Buffer.alloc(0));

const inputArb = fc.oneof(
  // pure garbage
  fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
  // a start, frames, maybe END, maybe cut short anywhere
  fc
    .tuple(startArb, fc.array(frameArb, { maxLength: 8 }), fc.boolean(), fc.option(fc.nat(), { freq: 3 }))
    .map(([start, frames, end, cut]) => {
      const all = Buffer.concat([start, ...frames, end ? frame(END) : Buffer.alloc(0)]);
      return cut === null ? all : all.subarray(0, cut % (all.length + 1));
    }),
);
/** The bytes cut into pieces of these sizes in turn, to cross TCP reads anywhere. */
const sizesArb = fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 5 });

function pieces(bytes: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    out.push(bytes.subarray(at, at + sizes[i % sizes.length]));
    at += sizes[i % sizes.length];
  }
  return out;
}

t.test('property: garbage and malformed frame sequences never break the server', async (t) => {
  const server = await startServer('enc_server', [], ENV);
  t.teardown(() => server.stop());
  const destroyed: number[] = [];
  let runs = 0;
  let faults = 0;

  await fc.assert(
    fc.asyncProperty(inputArb, sizesArb, fc.constantFrom('end', 'end', 'end', 'destroy'), async (bytes, sizes, after) => {
      runs++;
      const before = server.stderr().length;
      const reply = await exchange(server.port, pieces(bytes, sizes), { after: after as 'end' | 'destroy' });
      if (after === 'destroy') {
        destroyed.push(reply.localPort);
      } else {
        const types = frameTypes(reply);
        if (reply.malformed) throw new Error('the server sent malformed frames');
        if (!reply.endedByServer) throw new Error('the server did not close the connection');
        const last = types.at(-1);
        if (last !== DONE && last !== ERROR) throw new Error(`the reply does not end with DONE or ERROR: ${types}`);
        if (types.slice(0, -1).some((type) => type !== RESULT)) throw new Error(`frames other than RESULT before the end: ${types}`);
        if (!/^[A-Z ]*$/.test(resultText(reply))) throw new Error('RESULT carries non-symbols');
        // A fault is logged in one line; a good job, or a connection that sent nothing, in none.
        const want = last === ERROR && bytes.length > 0 ? 1 : 0;
        if (want === 1) {
          faults++;
          await waitUntil(() => linesFor(server.stderr().slice(before), reply.localPort).length > 0, 5_000, 'the log line');
        }
        await rawRoundTrip(server.port);
        const lines = linesFor(server.stderr().slice(before), reply.localPort).length;
        if (lines !== want) throw new Error(`${lines} log lines for a reply ${types}, expected ${want}`);
        return;
      }
      await rawRoundTrip(server.port);
    }),
    { numRuns: 50 },
  );
  t.pass(`${runs} runs, ${faults} of them answered with ERROR; a good job after each one`);

  for (const port of destroyed) t.ok(linesFor(server.stderr(), port).length <= 1, `at most one log line for the aborted connection from port ${port}`);
  t.notOk(server.stderr().includes('    at '), 'no stack trace in the log');
  t.equal(server.child.exitCode, null, 'the server is still running');
  await waitUntil(() => childrenOf(server.child.pid!).length === 5, 5_000, 'five workers').catch(() => {});
  t.equal(childrenOf(server.child.pid!).length, 5, 'still five workers');
  const dir = tempDir(t);
  writeFileSync(join(dir, 'text'), 'THE END\n');
  writeFileSync(join(dir, 'key'), 'ABCDEFGHIJ\n');
  const result = await run('enc_client', [join(dir, 'text'), join(dir, 'key'), String(server.port)]);
  t.equal(result.code, 0, 'enc_client exits 0 after the property runs');
  t.equal(result.stdout.toString(), `${model('encrypt', 'THE END', 'ABCDEFG')}\n`, 'and gets the right ciphertext');
});
