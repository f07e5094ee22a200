// Reloads that go wrong end, and leave exactly one generation: a burst of SIGHUPs coalesces (the worker count and the
// memory come back to one generation's), a new worker wedged before it is ready is killed at its start deadline and
// replaced, and a program on disk that cannot start is given up after a few failed starts, the old workers serving on.
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { RELOAD_FAILED_STARTS } from '../src/server/pool.js';
import { bin, startServer, writeProgram, type Server } from './helpers/programs.js';
import { childrenOf, processState, rawRoundTrip, serverFootprint, tempDir, waitForSettledPool, waitUntil } from './helpers/wire.js';

/** A server run from a copy of enc_server, to be replaced as ./compileall would; without the test runner's preload. */
async function serverFromCopy(t: Test, workers: number, env: NodeJS.ProcessEnv = {}): Promise<{ server: Server; program: string }> {
  const program = join(tempDir(t), 'enc_server');
  copyFileSync(bin('enc_server'), program);
  const server = await startServer('enc_server', ['--workers', String(workers)], env, { program, under: ['env', '-u', 'NODE_OPTIONS'] });
  t.teardown(async () => {
    // A worker spinning for ever would not notice its main process gone.
    const workers = childrenOf(server.child.pid!);
    await server.stop('SIGKILL');
    for (const w of workers) if (processState(w) !== null) process.kill(w, 'SIGKILL');
  });
  await waitForSettledPool(server.child.pid!, workers);
  return { server, program };
}

const count = (text: string, pattern: RegExp): number => (text.match(pattern) ?? []).length;

t.test('50 SIGHUPs in a second: one generation of workers again, and its memory', async (t) => {
  const N = 2;
  const { server } = await serverFromCopy(t, N);
  const pid = server.child.pid!;
  const before = serverFootprint(pid);
  for (let i = 0; i < 50; i++) {
    process.kill(pid, 'SIGHUP');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await waitForSettledPool(pid, N, 20_000);
  // A start the throttle held back would show now: a generation never grows past N.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await waitForSettledPool(pid, N, 20_000);
  const after = serverFootprint(pid);
  t.equal(after.workers, N, `${N} workers, as asked for`);
  const total = (f: typeof before): number => f.mainRssKb + f.workerRssKb;
  t.ok(total(after) < 1.5 * total(before), `memory of one generation: ${total(before)} KiB before, ${total(after)} KiB after`);
  const reloads = count(server.stderr(), /^enc_server: reloading: /gm);
  t.ok(reloads >= 2 && reloads < 50, `the SIGHUPs coalesced into ${reloads} reloads`);
  t.match(server.stderr(), /^enc_server: reload asked for while one is under way: one more will follow it$/m, 'and the log says so');
  await rawRoundTrip(server.port, 16);
  t.pass('and the server serves');
});

t.test('a new worker wedged before it is ready: killed at its start deadline and replaced; the reload completes', async (t) => {
  const N = 2;
  // Long enough for a Node start on a loaded machine: a worker killed for being slow would count as a failed start.
  const START_MS = 4000;
  const { server, program } = await serverFromCopy(t, N, { OTP_START_TIMEOUT_MS: String(START_MS) });
  const pid = server.child.pid!;
  const old = childrenOf(pid);
  // The first worker of the new program to start spins for ever before it listens; the others start as usual.
  const mark = join(tempDir(t), 'wedged');
  writeProgram(program, 'enc_server', {
    before: `if (process.env.OTP_WORKER === '1') { let first = true; try { require('fs').mkdirSync(${JSON.stringify(mark)}); } catch { first = false; } if (first) for (;;); }`,
  });
  process.kill(pid, 'SIGHUP');
  const killed = new RegExp(`^enc_server: worker \\d+ did not start within ${START_MS} ms and was killed; starting another$`, 'm');
  await waitUntil(() => killed.test(server.stderr()), 20_000, 'the wedged worker killed');
  t.pass('the wedged worker is killed at its deadline, and the log says so');
  await waitUntil(() => childrenOf(pid).every((w) => !old.includes(w)), 20_000, 'the old workers retired');
  await waitForSettledPool(pid, N, 20_000);
  t.pass(`the reload completes: ${N} new workers, the old ones gone`);
  await rawRoundTrip(server.port, 16);
  t.pass('and they serve');
});

t.test('a program on disk that cannot start: the reload is given up after a few failed starts; the old workers serve on', async (t) => {
  const N = 2;
  const { server, program } = await serverFromCopy(t, N);
  const pid = server.child.pid!;
  const old = childrenOf(pid).sort();
  writeProgram(program, 'enc_server', { before: "if (process.env.OTP_WORKER === '1') throw new Error('a broken build')" });
  process.kill(pid, 'SIGHUP');
  const givenUp = /^enc_server: reload given up: its new workers failed to start \d+ times \(the last: worker \d+ exited with code 1\); the old workers keep serving$/m;
  await waitUntil(() => givenUp.test(server.stderr()), 20_000, 'the reload given up');
  t.pass('the reload is given up, in one line');
  const failures = (): number => count(server.stderr(), /^Error: a broken build$/gm);
  // A new worker started before the reload was given up may still fail after the line; then no more, were starts
  // still being made (the throttle allows 2 × N a second).
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const soFar = failures();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  t.equal(failures(), soFar, `no more failed starts (${soFar} in all)`);
  t.ok(soFar <= N + RELOAD_FAILED_STARTS, `at most ${N + RELOAD_FAILED_STARTS} failed starts: ${soFar}`);
  t.equal(count(server.stderr(), /reload given up/g), 1, 'one such line');
  t.same(childrenOf(pid).sort(), old, 'the old workers are the ones serving');
  await rawRoundTrip(server.port, 16);
  t.pass('and they serve');
});
