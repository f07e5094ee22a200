// Signals, the Unix way: after draining, SIGTERM and SIGINT kill the server by that same
// signal; Ctrl-C on a bash script with the server in the foreground stops the script; a
// second signal kills at once; SIGHUP to the whole process group breaks no job; a job in
// flight finishes before the server goes, and one stalled is cut after the grace time.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ErrorCode, FrameType } from '../src/protocol/frames.js';
import { bin, freePort, startServer, waitForPort } from './helpers/programs.js';
import {
  canConnect,
  childrenOf,
  errorCode,
  exchange,
  frame,
  hello,
  model,
  processState,
  randomSymbols,
  RawConnection,
  resultText,
  tempDir,
  waitUntil,
} from './helpers/wire.js';

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
  const server = await startServer('enc_server', ['--workers', '2', '-v']);
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
  // The client never closed: its old worker closed it after the linger, then left, and
  // logged the job first (-v: a line a job).
  const logged = new RegExp(`:${job.conn.localPort}: enc_client, \\d+ bytes in, 2000 symbols out, \\d+ ms, ok`);
  await waitUntil(() => logged.test(server.stderr()), 5_000, 'the log line of the job').catch(() => {});
  t.match(server.stderr(), logged, 'the job is logged by its old worker');
});

t.test('a second SIGTERM kills at once, by SIGTERM, cutting the job in flight', async (t) => {
  // Neither the grace time nor the idle timeout could end the job in the seconds this allows.
  const server = await startServer('enc_server', ['--workers', '1'], { OTP_SHUTDOWN_GRACE_MS: '60000', OTP_IDLE_TIMEOUT_MS: '120000' });
  t.teardown(() => server.stop('SIGKILL'));
  const job = await jobInFlight(server.port);
  t.teardown(() => job.conn.destroy());
  const workers = childrenOf(server.child.pid!);
  const exit = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(server.child.exitCode ?? server.child.signalCode, null, 'the first one waits for the job (grace: 60 s)');
  server.child.kill('SIGTERM');
  const [code, how] = await exit;
  t.same([code, how], [null, 'SIGTERM'], 'the second one: dead by SIGTERM');
  let cut = false;
  void Promise.race([job.conn.ended, job.conn.closed]).then(() => (cut = true));
  await waitUntil(() => cut, 5_000, "the job's connection to close");
  t.pass("the job's connection is closed at once, not left hanging");
  await waitUntil(() => workers.every((w) => processState(w) === null), 5_000, 'the worker to be gone');
  t.pass('and its worker is gone');
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: the job in flight finishes, then the server dies by ${signal} and leaves no worker`, async (t) => {
    const server = await startServer('enc_server');
    t.teardown(() => server.stop('SIGKILL'));
    const pid = server.child.pid!;
    await waitUntil(() => childrenOf(pid).length === 5, 10_000, 'five workers');
    const workers = childrenOf(pid);
    const text = randomSymbols(200_000);
    const key = randomSymbols(200_000);
    const keyFile = join(tempDir(t), 'key');
    writeFileSync(keyFile, key);
    // The text comes from stdin, so the job is in flight for as long as we hold stdin open.
    const client = spawn(bin('enc_client'), ['-', keyFile, String(server.port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    t.teardown(() => void client.kill('SIGKILL'));
    const out: Buffer[] = [];
    let stderr = '';
    client.stdout!.on('data', (chunk: Buffer) => out.push(chunk));
    client.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const clientExit = once(client, 'exit');
    client.stdin!.write(text.slice(0, 1000));
    await waitUntil(() => out.length > 0, 10_000, 'the first ciphertext bytes');

    const serverExit = once(server.child, 'exit');
    server.child.kill(signal);
    await waitUntil(async () => !(await canConnect(server.port)), 5_000, 'the port to close');
    t.pass('the server stops accepting connections');
    t.equal(server.child.exitCode, null, 'but does not exit while the job is in flight');

    client.stdin!.end(`${text.slice(1000)}\n`);
    const [clientCode] = await clientExit;
    t.equal(clientCode, 0, 'the job in flight finishes: exit 0');
    t.equal(Buffer.concat(out).toString(), `${model('encrypt', text, key)}\n`, 'with the whole, right ciphertext');
    t.equal(stderr, '', 'and nothing on stderr');

    const [code, how] = await serverExit;
    t.same([code, how], [null, signal], `then the server dies by ${signal}, as a shell expects`);
    t.same(childrenOf(pid), [], 'no process is left with the server as its parent');
    t.same(workers.map(processState), workers.map(() => null), 'every worker is gone and reaped (no zombie)');
  });
}

t.test('SIGTERM: a client with no job yet gets ERROR SHUTDOWN; a stalled job is cut after the grace time', async (t) => {
  const GRACE = 500;
  const server = await startServer('enc_server', ['--workers', '1'], { OTP_SHUTDOWN_GRACE_MS: String(GRACE) });
  t.teardown(() => server.stop('SIGKILL'));
  const pid = server.child.pid!;
  const busy = new RawConnection(server.port);
  t.teardown(() => busy.destroy());
  await busy.connected;
  busy.socket.write(Buffer.concat([hello(), frame(FrameType.TEXT, 'AB'), frame(FrameType.KEY, 'CD')])); // and no END
  await waitUntil(async () => (await busy.frames()).frames.length > 0, 10_000, 'the RESULT of the busy job');
  const queued = new RawConnection(server.port);
  t.teardown(() => queued.destroy());
  await queued.connected;
  queued.socket.write(hello());
  // A barrier: once the only worker has answered a later connection, it has read the
  // HELLO that was in its socket before that connection was made.
  const barrier = await exchange(server.port, [Buffer.from('not a frame')]);
  t.equal(errorCode(barrier), ErrorCode.PROTOCOL, 'the barrier connection is answered');
  const workers = childrenOf(pid);
  const exit = once(server.child, 'exit');
  const stopped = Date.now();
  server.child.kill('SIGTERM');
  await queued.ended;
  const { frames } = await queued.frames();
  t.same(frames.map((f) => f.type), [FrameType.ERROR], 'the client with no job yet gets one ERROR frame and nothing else');
  t.equal(frames[0]?.payload[0], ErrorCode.SHUTDOWN, 'code SHUTDOWN');
  const [code, how] = await exit;
  const took = Date.now() - stopped;
  t.same([code, how], [null, 'SIGTERM'], 'the server dies by SIGTERM');
  t.ok(took >= GRACE - 50 && took < GRACE + 5_000, `after the grace time, the stalled job cut (${took} ms)`);
  await Promise.race([busy.ended, busy.closed]);
  t.pass('the stalled connection is closed');
  t.same(workers.map(processState), [null], 'the worker is gone');
});

