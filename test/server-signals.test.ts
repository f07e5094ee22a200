// Signals, the Unix way: after draining, SIGTERM and SIGINT kill the server by that same
// signal; Ctrl-C on a bash script with the server in the foreground stops the script; a
// second signal kills at once; SIGHUP to the whole process group breaks no job.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import t from 'tap';
import { FrameType } from '../src/protocol.js';
import { bin, freePort, startServer, waitForPort } from './helpers/programs.js';
import { childrenOf, frame, hello, model, processState, randomSymbols, RawConnection, resultText, waitUntil } from './helpers/wire.js';

const { TEXT, KEY, END, DONE } = FrameType;

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} with no job in flight: the server dies by ${signal} at once, and its workers leave`, async (t) => {
    const server = await startServer('enc_server');
    t.teardown(() => server.stop('SIGKILL'));
    const workers = childrenOf(server.child.pid!);
    const exit = once(server.child, 'exit');
    server.child.kill(signal);
    const [code, how] = await exit;
    t.same([code, how], [null, signal], `killed by ${signal} (exit code ${code}, signal ${how})`);
    await waitUntil(() => workers.every((w) => processState(w) === null), 10_000, 'the workers to be gone');
    t.pass('no worker left');
  });
}

t.test('Ctrl-C on a bash script running the server in the foreground stops the script', async (t) => {
  const port = await freePort();
  // A new process group, like a terminal's foreground job: Ctrl-C sends SIGINT to all of it.
  const script = spawn('bash', ['-c', `"${bin('enc_server')}" ${port}; echo "the script went on"`], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    try {
      process.kill(-script.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  let stdout = '';
  script.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const exit = once(script, 'exit');
  await waitForPort(port, 30_000);
  process.kill(-script.pid!, 'SIGINT');
  const [code, how] = await exit;
  t.same([code, how], [null, 'SIGINT'], 'bash itself dies by SIGINT: its child died by SIGINT');
  t.equal(stdout, '', 'and the rest of the script did not run');
});

/** A job held open mid-stream on a raw connection: HELLO, some text and key, no END. */
async function jobInFlight(port: number): Promise<{ conn: RawConnection; finish: () => Promise<string>; expected: string }> {
  const text = randomSymbols(2000);
  const key = randomSymbols(2000);
  const conn = new RawConnection(port);
  await conn.connected;
  conn.socket.write(Buffer.concat([hello(), frame(TEXT, text.slice(0, 1000)), frame(KEY, key.slice(0, 1000))]));
  await waitUntil(async () => (await conn.frames()).frames.length > 0, 20_000, 'the first RESULT');
  return {
    conn,
    expected: model('encrypt', text, key),
    finish: async () => {
      conn.socket.write(Buffer.concat([frame(TEXT, text.slice(1000)), frame(KEY, key.slice(1000)), frame(END)]));
      await conn.ended;
      const reply = { frames: (await conn.frames()).frames };
      return reply.frames.at(-1)?.type === DONE ? resultText(reply as never) : `no DONE: ${reply.frames.map((f) => f.type)}`;
    },
  };
}

t.test('SIGHUP to the whole process group (a closed terminal) breaks no job in flight', async (t) => {
  const server = await startServer('enc_server', ['--workers', '2']);
  t.teardown(() => server.stop('SIGKILL'));
  const job = await jobInFlight(server.port);
  t.teardown(() => job.conn.destroy());
  for (const pid of [server.child.pid!, ...childrenOf(server.child.pid!)]) process.kill(pid, 'SIGHUP');
  t.equal(await job.finish(), job.expected, 'the job finishes with the right result');
  t.equal(server.child.exitCode, null, 'the server is still running');
  t.equal(server.child.signalCode, null, 'not killed');
  // SIGHUP reloads (docs/DEPLOY.md): a new pair of workers, the old ones gone once idle.
  await waitUntil(() => childrenOf(server.child.pid!).length === 2, 10_000, 'two workers again after the reload');
  t.pass('with two workers');
});

t.test('a second SIGTERM kills at once, by SIGTERM, cutting the job in flight', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1'], { OTP_SHUTDOWN_GRACE_MS: '60000' });
  t.teardown(() => server.stop('SIGKILL'));
  const job = await jobInFlight(server.port);
  t.teardown(() => job.conn.destroy());
  const exit = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(server.child.exitCode ?? server.child.signalCode, null, 'the first one waits for the job (grace: 60 s)');
  server.child.kill('SIGTERM');
  const [code, how] = await exit;
  t.same([code, how], [null, 'SIGTERM'], 'the second one: dead by SIGTERM');
  await Promise.race([job.conn.ended, job.conn.closed]);
  t.pass("the job's connection is closed, not left hanging");
});
