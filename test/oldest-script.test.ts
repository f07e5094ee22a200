// The course's oldest grading script: both servers started as background jobs, two keygens, then the first enc_client
// at once, no sleep: the client must be served, not refused, however slowly the workers start. Twenty rounds, fresh
// servers on free ports each time, with the machine's other core kept busy; and what it rests on, made certain: a
// client that connects while no worker is up yet (each stopped as it is forked) waits, and is served once one is.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FrameType } from '../src/protocol/frames.js';
import { bin, FIXTURES, freePort, ROOT, run } from './helpers/programs.js';
import { childrenOf, frame, hello, model, randomSymbols, RawConnection, resultText, tempDir, waitUntil } from './helpers/wire.js';

const ROUNDS = 20;
/** Past the client's own reply timeout (30 s): a client left waiting says so itself, a hang fails its round here. */
const ROUND_DEADLINE_MS = 45_000;
// The rounds, each within its deadline, may take longer than the runner's default time for a file.
t.setTimeout(ROUNDS * ROUND_DEADLINE_MS);

// As a user runs it: without the test runner's preload, which it puts in every process this one spawns.
const SCRIPT = `
unset NODE_OPTIONS
enc_server "$P1" & enc=$!
dec_server "$P2" & dec=$!
trap 'kill $enc $dec 2>/dev/null; wait' EXIT
keygen 1024 > k1
keygen 1024 > k2
enc_client "$PLAINTEXT" k1 "$P1" > c1
echo "enc_client exit $?"
`;

interface Round {
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs the script in its own process group, killed whole at the deadline. */
async function round(dir: string, p1: number, p2: number): Promise<Round> {
  const script = spawn('bash', ['-c', SCRIPT], {
    cwd: dir,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: `${ROOT}:${process.env.PATH}`, P1: String(p1), P2: String(p2), PLAINTEXT: join(FIXTURES, 'plaintext1') },
  });
  let stdout = '';
  let stderr = '';
  script.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  script.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let timedOut = false;
  const killGroup = (): void => {
    try {
      process.kill(-script.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.on('exit', killGroup);
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, ROUND_DEADLINE_MS);
  await once(script, 'close');
  clearTimeout(timer);
  process.off('exit', killGroup);
  return { stdout, stderr, timedOut };
}

t.test(`servers started in the background, then a client at once: served ${ROUNDS} times of ${ROUNDS}, the other core busy`, async (t) => {
  const spinner = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  t.teardown(() => void spinner.kill('SIGKILL'));
  const text = readFileSync(join(FIXTURES, 'plaintext1'), 'latin1').replace(/\n$/, '');
  const failures: string[] = [];
  for (let i = 1; i <= ROUNDS; i++) {
    const dir = tempDir(t);
    const [p1, p2] = [await freePort(), await freePort()];
    const result = await round(dir, p1, p2);
    const read = (name: string): string => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'latin1') : '');
    const key = read('k1');
    const got = read('c1');
    const ok = !result.timedOut && result.stdout === 'enc_client exit 0\n' && got === `${model('encrypt', text, key.slice(0, text.length))}\n`;
    if (!ok) failures.push(`round ${i}: ${result.timedOut ? `not done in ${ROUND_DEADLINE_MS} ms; ` : ''}${result.stdout.trim()} ${result.stderr.trim()}`);
  }
  t.same(failures, [], `every round's client was served, with the right ciphertext (${ROUNDS - failures.length} of ${ROUNDS})`);
});

t.test('a client that connects while no worker is up yet waits in the backlog and is served once one is', async (t) => {
  const port = await freePort();
  const server = spawn(bin('enc_server'), [String(port), '--workers', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = once(server, 'exit');
  const stopped = new Set<number>();
  t.teardown(async () => {
    for (const w of stopped) process.kill(w, 'SIGCONT');
    server.kill('SIGKILL');
    await exited;
  });
  // Stopped as soon as they are forked: a Node start is tens of ms away from listening.
  await waitUntil(
    () => {
      for (const w of childrenOf(server.pid!)) {
        if (!stopped.has(w)) process.kill(w, 'SIGSTOP');
        stopped.add(w);
      }
      return stopped.size === 2;
    },
    10_000,
    'both workers forked',
  );
  const text = randomSymbols(1000);
  const key = randomSymbols(1000);
  const raw = new RawConnection(port);
  await raw.connected;
  t.pass('a connection completes with no worker up: the main process listens');
  raw.socket.end(Buffer.concat([hello(), frame(FrameType.TEXT, text), frame(FrameType.KEY, key), frame(FrameType.END)]));
  const dir = tempDir(t);
  writeFileSync(join(dir, 'text'), `${text}\n`);
  writeFileSync(join(dir, 'key'), `${key}\n`);
  const client = run('enc_client', [join(dir, 'text'), join(dir, 'key'), String(port)]);
  // Time for the client to connect too while the workers are stopped.
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const w of stopped) process.kill(w, 'SIGCONT');
  await raw.closed;
  t.equal(resultText({ frames: (await raw.frames()).frames } as never), model('encrypt', text, key), 'the raw job is served once the workers run');
  const result = await client;
  t.equal(result.code, 0, 'enc_client, started while no worker was up, exits 0', { stderr: result.stderr });
  t.equal(result.stdout.toString('latin1'), `${model('encrypt', text, key)}\n`, 'with the right ciphertext');
});
