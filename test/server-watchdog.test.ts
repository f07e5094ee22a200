// The heartbeat watchdog: a worker that stops answering (SIGSTOP) is killed and replaced
// within the watchdog time, its client gets an error instead of a hang, and the next
// client is served by the new worker.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { bin, startServer } from './helpers/programs.js';
import { childrenOf, model, processState, randomSymbols, rawRoundTrip, tempDir, waitUntil } from './helpers/wire.js';

const WATCHDOG_MS = 1000;

t.test('a SIGSTOPped worker is killed and replaced; its client exits 2 instead of hanging', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1'], { OTP_WATCHDOG_MS: String(WATCHDOG_MS) });
  t.teardown(() => server.stop('SIGKILL'));
  const [worker] = childrenOf(server.child.pid!);
  t.teardown(() => {
    if (processState(worker) === 'T') process.kill(worker, 'SIGKILL');
  });
  const dir = tempDir(t);
  const text = randomSymbols(5000);
  const key = randomSymbols(5000);
  writeFileSync(join(dir, 'key'), key);
  // The text comes from stdin, so the job is in flight for as long as we hold stdin open.
  const client = spawn(bin('enc_client'), ['-', join(dir, 'key'), String(server.port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => void client.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  client.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  client.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = once(client, 'exit');
  client.stdin!.write(text.slice(0, 1000));
  await waitUntil(() => stdout.length > 0, 20_000, 'the first ciphertext');

  process.kill(worker, 'SIGSTOP');
  const stopped = Date.now();
  client.stdin!.end(`${text.slice(1000)}\n`);
  const [code] = await exit;
  const took = Date.now() - stopped;
  t.equal(code, 2, `the client exits 2 (${took} ms after the stop; watchdog ${WATCHDOG_MS} ms)`);
  t.match(stderr, /^enc_client: error: [^\n]+\n$/, 'with a one-line error');
  t.not(stdout, `${model('encrypt', text, key)}\n`, 'not the whole result');
  const logged = new RegExp(`^enc_server: worker ${worker} did not answer for ${WATCHDOG_MS} ms and was killed; starting another$`, 'm');
  await waitUntil(() => logged.test(server.stderr()), 10_000, 'the log line');
  t.pass('the server logs the kill in one line');
  t.not(processState(worker), 'T', 'the stopped worker is gone');
  await waitUntil(() => childrenOf(server.child.pid!).length === 1 && !childrenOf(server.child.pid!).includes(worker), 20_000, 'a new worker');
  await rawRoundTrip(server.port, 50);
  t.pass('a new worker serves the next job');
});
