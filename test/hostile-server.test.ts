// The built clients against fake servers that lie: short, long, foreign, silent, endless, not otp. The client
// exits 2 with one line, never hangs, and never writes more than the text's length to stdout.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ErrorCode, FrameType, type Frame } from '../src/protocol/frames.js';
import { FrameDecoder } from '../src/streams/frame-decoder.js';
import { bin, FIXTURES } from './helpers/programs.js';
import { frame } from './helpers/wire.js';

const TEXT_PATH = join(FIXTURES, 'plaintext1');
const TEXT = readFileSync(TEXT_PATH, 'latin1').replace(/\n$/, '');
const N = TEXT.length;
/** The key is never looked at by a fake server; any long enough file of symbols will do. */
const KEY_PATH = join(FIXTURES, 'plaintext2');
/** Past this a client is taken to hang, and killed. */
const HANG_MS = 15_000;

interface Outcome {
  code: number | null;
  stdout: Buffer;
  stderr: string;
  hung: boolean;
}

/** Runs a client against `port`, killing it if it has not ended within HANG_MS. */
async function client(port: number, options: { stdin?: (w: NodeJS.WritableStream) => void; env?: NodeJS.ProcessEnv; program?: string } = {}): Promise<Outcome> {
  const program = options.program ?? 'enc_client';
  const child = spawn(bin(program), [options.stdin ? '-' : TEXT_PATH, KEY_PATH, String(port)], {
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, OTP_REPLY_TIMEOUT_MS: '60000', ...options.env },
  });
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  if (options.stdin) {
    child.stdin!.on('error', () => {});
    options.stdin(child.stdin!);
  }
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, HANG_MS);
  const [code] = await once(child, 'close');
  clearTimeout(timer);
  return { code: code as number | null, stdout: Buffer.concat(stdout), stderr, hung };
}

/** A fake server on a free port: `behave` gets each connection and the frames the client sends on it. */
async function fakeServer(t: Test, behave: (socket: Socket, frames: FrameDecoder) => void): Promise<number> {
  const sockets = new Set<Socket>();
  // allowHalfOpen: the client's FIN after END must not close the fake's side; the fake decides.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    const frames = new FrameDecoder();
    socket.pipe(frames);
    behave(socket, frames);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as { port: number }).port;
}

/** Answers once the client's END has come, with `reply`; keeps the connection open unless told. */
function afterEnd(reply: (socket: Socket) => void): (socket: Socket, frames: FrameDecoder) => void {
  return (socket, frames) => {
    frames.on('data', (f: Frame) => {
      if (f.type === FrameType.END) reply(socket);
    });
  };
}

function result(symbols: string): Buffer {
  return frame(FrameType.RESULT, symbols);
}
const DONE = frame(FrameType.DONE);

/** Exit 2, one line naming the program, and at most `maxStdout` bytes on stdout, with no newline. */
function serverFault(t: Test, r: Outcome, pattern: RegExp, maxStdout = N): void {
  t.notOk(r.hung, 'the client does not hang');
  t.equal(r.code, 2, 'exit 2');
  t.match(r.stderr, /^enc_client: error: [^\n]+\n$/, 'one line on stderr');
  t.match(r.stderr, pattern, 'says what the server did');
  t.ok(r.stdout.length <= maxStdout, `stdout holds at most ${maxStdout} bytes (${r.stdout.length})`);
  t.notOk(r.stdout.includes(0x0a), 'and no newline: the job did not end well');
}

t.test('a server that sends fewer symbols than the text', async (t) => {
  const port = await fakeServer(t, afterEnd((s) => s.end(Buffer.concat([result(TEXT.slice(0, 20)), DONE]))));
  const r = await client(port);
  serverFault(t, r, new RegExp(`the enc_server on port ${port} sent 20 symbols for a ${N}-symbol text$`, 'm'));
});

t.test('a server that sends more symbols than the text', async (t) => {
  const port = await fakeServer(t, afterEnd((s) => s.end(Buffer.concat([result(`${TEXT}XXXX`), DONE]))));
  const r = await client(port);
  serverFault(t, r, new RegExp(`sent ${N + 4} symbols for a ${N}-symbol text$`, 'm'), 0);
});

t.test('a server that sends the text and then one symbol more', async (t) => {
  const port = await fakeServer(t, afterEnd((s) => s.end(Buffer.concat([result(TEXT), result('X'), DONE]))));
  const r = await client(port);
  serverFault(t, r, new RegExp(`sent ${N + 1} symbols for a ${N}-symbol text$`, 'm'));
  t.equal(r.stdout.toString('latin1'), TEXT, 'stdout holds the text\'s length and not one byte more');
});

t.test('a server that sends a byte outside the alphabet', async (t) => {
  // Every byte is tried in-process (reply-check.test.ts); here a few, end to end.
  const foreign = [0x00, 0x0a, 0x61, 0xff];
  let connection = 0;
  const port = await fakeServer(
    t,
    afterEnd((s) => {
      const payload = Buffer.from(TEXT, 'latin1');
      payload[5] = foreign[connection++ % foreign.length];
      s.end(Buffer.concat([frame(FrameType.RESULT, payload), DONE]));
    }),
  );
  const expected = ['0x00', 'newline \\(0x0a\\)', "'a' \\(0x61\\)", '0xff'];
  for (const shown of expected) {
    serverFault(t, await client(port), new RegExp(`sent ${shown} as symbol 6, which is not a symbol$`, 'm'), 0);
  }
});

t.test('a server that says nothing past the reply timeout', async (t) => {
  const port = await fakeServer(t, () => {});
  const r = await client(port, { env: { OTP_REPLY_TIMEOUT_MS: '400' } });
  serverFault(t, r, new RegExp(`the enc_server on port ${port} sent nothing for 400 ms$`, 'm'), 0);
});

t.test('a server that stops half way and holds the connection', async (t) => {
  const port = await fakeServer(t, afterEnd((s) => s.write(result(TEXT.slice(0, 10)))));
  const r = await client(port, { env: { OTP_REPLY_TIMEOUT_MS: '400' } });
  serverFault(t, r, /sent nothing for 400 ms$/m);
  t.equal(r.stdout.toString('latin1'), TEXT.slice(0, 10), 'stdout holds what came');
});

t.test('a slow server that keeps sending is not timed out', async (t) => {
  const port = await fakeServer(
    t,
    afterEnd((s) => {
      let i = 0;
      const drip = setInterval(() => {
        if (s.destroyed) return clearInterval(drip);
        if (i < N) s.write(result(TEXT[i++]));
        else {
          clearInterval(drip);
          s.end(DONE);
        }
      }, 30);
    }),
  );
  const r = await client(port, { env: { OTP_REPLY_TIMEOUT_MS: '400' } });
  t.equal(r.code, 0, `${N} symbols 30 ms apart, against a 400 ms timeout: exit 0`);
  t.equal(r.stdout.toString('latin1'), `${TEXT}\n`, 'the whole reply');
});

t.test('a server that sends RESULT frames without end', async (t) => {
  const port = await fakeServer(t, (socket) => {
    const chunk = result('A'.repeat(4096));
    const flood = (): void => {
      while (!socket.destroyed && socket.write(chunk));
    };
    socket.on('drain', flood);
    flood();
  });
  serverFault(t, await client(port), new RegExp(`sent \\d+ symbols for a ${N}-symbol text$`, 'm'), 0);
  // A stdin that stays open: no length is known, and the bound is what was sent so far.
  const piped = await client(port, { stdin: (w) => w.write(TEXT) });
  serverFault(t, piped, /sent \d+ symbols for the first \d+ of the text$/m);
});

t.test('a server that answers a stdin text with more than it was sent', async (t) => {
  const port = await fakeServer(t, afterEnd((s) => s.end(Buffer.concat([result(`${TEXT}${TEXT}`), DONE]))));
  const r = await client(port, { stdin: (w) => w.end(`${TEXT}\n`) });
  serverFault(t, r, new RegExp(`sent ${2 * N} symbols for a ${N}-symbol text$`, 'm'), 0);
});

t.test('a slow stdin producer is not taken for a silent server', async (t) => {
  // An honest fake: it echoes each TEXT frame's bytes as RESULT, and DONE after END.
  let firstText!: () => void;
  const answered = new Promise<void>((resolve) => (firstText = resolve));
  const port = await fakeServer(t, (socket, frames) => {
    frames.on('data', (f: Frame) => {
      if (f.type === FrameType.TEXT) socket.write(frame(FrameType.RESULT, f.payload), firstText);
      if (f.type === FrameType.END) socket.end(DONE);
    });
  });
  const r = await client(port, {
    env: { OTP_REPLY_TIMEOUT_MS: '300' },
    stdin: (w) => {
      w.write('ABC');
      // The pause starts once the first part has been answered: the client is then owed nothing.
      void answered.then(() => setTimeout(() => w.end('DEF\n'), 1200));
    },
  });
  t.equal(r.code, 0, 'a 1200 ms pause in stdin against a 300 ms timeout: exit 0');
  t.equal(r.stdout.toString('latin1'), 'ABCDEF\n', 'the whole reply');
});

t.test('a server that sends DONE before the text has ended', async (t) => {
  const port = await fakeServer(t, (socket) => socket.write(DONE));
  const r = await client(port, { stdin: (w) => w.write('ABC') });
  serverFault(t, r, /sent DONE after 0 symbols, before the end of the text$/m, 0);
});

t.test('a server that does not speak otp', async (t) => {
  const port = await fakeServer(t, (socket) => socket.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
  serverFault(t, await client(port), new RegExp(`the server failed the job: frame of type 72 |port ${port} does not speak the otp protocol`), 0);
});

t.test('a server that sends ERROR and holds the connection open', async (t) => {
  const port = await fakeServer(t, (socket) => socket.write(frame(FrameType.ERROR, Buffer.from([ErrorCode.TIMEOUT, ...Buffer.from('go away')]))));
  serverFault(t, await client(port), /the server failed the job: go away$/m, 0);
});

t.test('a busy server', async (t) => {
  const busy = Buffer.from([ErrorCode.BUSY, ...Buffer.from('too many connections')]);
  const port = await fakeServer(t, (socket) => socket.end(frame(FrameType.ERROR, busy)));
  for (const program of ['enc_client', 'dec_client']) {
    const r = await client(port, { program });
    t.equal(r.code, 2, `${program}: exit 2`);
    t.match(r.stderr, new RegExp(`^${program}: error: server busy: the (enc|dec)_server on port ${port} is at its limit; try again later\\n$`), `${program}: server busy`);
    t.equal(r.stdout.length, 0, `${program}: nothing on stdout`);
  }
});

t.test("a server that blames the client's input (BAD_TEXT, BAD_KEY, KEY_SHORT, KEY_LAG): exit 1, as the client's own checks would", async (t) => {
  const codes = [ErrorCode.BAD_TEXT, ErrorCode.BAD_KEY, ErrorCode.KEY_SHORT, ErrorCode.KEY_LAG];
  let next = 0;
  const port = await fakeServer(t, afterEnd((s) => s.end(frame(FrameType.ERROR, Buffer.from([codes[next++ % codes.length], ...Buffer.from('your input')])))));
  for (const code of codes) {
    const r = await client(port);
    t.notOk(r.hung, `code ${code}: the client does not hang`);
    t.equal(r.code, 1, `code ${code}: exit 1`);
    t.equal(r.stderr, 'enc_client: error: the server failed the job: your input\n', `code ${code}: one line`);
    t.equal(r.stdout.length, 0, `code ${code}: nothing on stdout`);
  }
});
