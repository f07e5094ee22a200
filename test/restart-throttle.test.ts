// A worker that cannot start is restarted, but at most 2 × --workers times in any second: the program on disk
// replaced by one whose workers exit at once, then the only worker killed, and the restarts counted over a window.
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { bin, startServer, writeProgram } from './helpers/programs.js';
import { childrenOf, tempDir, waitForSettledPool, waitUntil } from './helpers/wire.js';

const WINDOW_MS = 5_000;

t.test('restarts of a worker that cannot start: at most 2 × --workers a second', async (t) => {
  const dir = tempDir(t);
  const program = join(dir, 'enc_server');
  copyFileSync(bin('enc_server'), program);
  // Without the test runner's preload, which it puts in every process this one spawns (NODE_OPTIONS), a Node start is
  // some 50 ms, not 300: unthrottled, the restarts would come several times as often as the throttle allows.
  const server = await startServer('enc_server', ['--workers', '1'], {}, { program, under: ['env', '-u', 'NODE_OPTIONS', '-u', 'NODE_EXTRA_CA_CERTS'] });
  t.teardown(() => server.stop('SIGKILL'));
  const pid = server.child.pid!;
  await waitForSettledPool(pid, 1);
  writeProgram(program, 'enc_server', { before: "process.env.OTP_WORKER === '1' && process.exit(3)" });
  const [worker] = childrenOf(pid);
  process.kill(worker, 'SIGKILL');
  const failed = (): number => (server.stderr().match(/^enc_server: worker \d+ exited with code 3; starting another$/gm) ?? []).length;
  await waitUntil(() => failed() > 0, 10_000, 'the first failed start');
  const first = failed();
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
  const starts = failed() - first;
  const most = 2 * Math.ceil(WINDOW_MS / 1000 + 1);
  t.ok(starts <= most, `${starts} failed starts in ${WINDOW_MS} ms: at most ${most} (2 a second, one worker)`);
  t.ok(starts >= 2, 'and the restarts go on');
  t.equal(server.child.exitCode ?? server.child.signalCode, null, 'with the main process running, no worker alive between them');
});
