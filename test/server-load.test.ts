// Load: fifty enc_clients at once all get the right ciphertext (served by five workers,
// many jobs each); thousands of short connections in a row, good and bad, leak no file
// descriptors in the main process or the workers, and do not grow the main process.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ErrorCode, FrameType, Role } from '../src/protocol/frames.js';
import { LINGER_MS } from '../src/protocol/timeouts.js';
import { run, startServer } from './helpers/programs.js';
import {
  childrenOf,
  errorCode,
  exchange,
  fdCount,
  frame,
  hello,
  job,
  model,
  randomSymbols,
  rawRoundTrip,
  serverFootprint,
  tempDir,
  waitForSettledPool,
  waitUntil,
} from './helpers/wire.js';

t.test('fifty enc_clients at once all get correct results', async (t) => {
  const server = await startServer('enc_server');
  t.teardown(() => server.stop());
  const dir = tempDir(t);
  const pid = server.child.pid!;

  // Mostly small jobs, a few of 300 kB and more (several reads each), so some run alongside many others.
  const jobs = Array.from({ length: 50 }, (_, i) => {
    const n = i % 10 === 0 ? 300_000 + i * 1000 : 1 + ((i * 7919) % 20_000);
    const text = randomSymbols(n);
    const key = randomSymbols(n + (i % 3));
    writeFileSync(join(dir, `text${i}`), `${text}\n`);
    writeFileSync(join(dir, `key${i}`), `${key}\n`);
    return { text: join(dir, `text${i}`), key: join(dir, `key${i}`), expected: `${model('encrypt', text, key)}\n` };
  });

  await waitUntil(() => childrenOf(pid).length === 5, 30_000, 'five workers');
  let most = 0;
  let fewest = Infinity;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const now = childrenOf(pid).length;
      most = Math.max(most, now);
      fewest = Math.min(fewest, now);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const started = Date.now();
  const results = await Promise.all(jobs.map((j) => run('enc_client', [j.text, j.key, String(server.port)])));
  const took = Date.now() - started;
  sampling = false;
  await sampler;

  const wrong = results.filter((r, i) => r.code !== 0 || r.stdout.toString() !== jobs[i].expected || r.stderr !== '');
  t.equal(wrong.length, 0, `all 50 exit 0 with the right ciphertext and nothing on stderr (${took} ms)`);
  if (wrong.length > 0) t.comment(wrong.map((r) => `exit ${r.code}: ${r.stderr}`).join(''));
  t.same({ fewest, most }, { fewest: 5, most: 5 }, 'the pool stayed at five workers throughout');
  t.equal(childrenOf(pid).length, 5, 'five workers afterwards');
  t.equal(server.stderr(), '', 'the server logged nothing: no job failed');
});

t.test('thousands of short connections leak no descriptors and no memory', async (t) => {
  const server = await startServer('enc_server');
  t.teardown(() => server.stop());
  const pid = server.child.pid!;
  const TOTAL = 2000;
  const AT_ONCE = 8;

  /** One short connection: three in four a tiny valid job, the rest one kind of bad input each. */
  const connection = async (i: number): Promise<void> => {
    const kind = i % 8;
    if (kind < 6) return rawRoundTrip(server.port, 1 + (i % 50));
    const [input, code] =
      kind === 6
        ? [job('HELLO', 'WORLD', Role.DECRYPT), ErrorCode.ROLE]
        : [Buffer.concat([hello(), frame(FrameType.TEXT, 'HELLO'), frame(FrameType.KEY, 'WOr')]), ErrorCode.BAD_KEY];
    const reply = await exchange(server.port, input);
    if (errorCode(reply) !== code) throw new Error(`connection ${i}: expected ERROR ${code}, got ${JSON.stringify(reply.frames.map((f) => f.type))}`);
  };
  const batch = async (from: number, to: number): Promise<void> => {
    let next = from;
    await Promise.all(
      Array.from({ length: AT_ONCE }, async () => {
        while (next < to) await connection(next++);
      }),
    );
  };

  await waitUntil(() => serverFootprint(pid).workers === 5, 10_000, 'five workers');
  const idle = serverFootprint(pid);
  await batch(0, 200); // warm up: lazy allocations, JIT, pools
  // Rejected sockets may linger up to LINGER_MS after their ERROR frame: start from a settled count.
  await waitUntil(() => serverFootprint(pid).mainFds <= idle.mainFds + 2, LINGER_MS * 3, 'the warm-up to settle').catch(() => {});
  const before = serverFootprint(pid);
  const started = Date.now();
  await batch(200, 200 + TOTAL);
  const took = Date.now() - started;
  t.pass(`${TOTAL} connections (${TOTAL / 4} of them bad) in ${took} ms, every one answered as expected`);

  // The last sockets close asynchronously in the workers: wait for the counts to settle.
  const settled = (): boolean => {
    const now = serverFootprint(pid);
    return now.mainFds <= before.mainFds + 2 && now.workerFds <= before.workerFds + 5;
  };
  await waitUntil(settled, LINGER_MS * 3, 'descriptor counts back near their start').catch(() => {});
  const after = serverFootprint(pid);
  t.comment(`before ${JSON.stringify(before)}`);
  t.comment(`after  ${JSON.stringify(after)}`);
  t.ok(after.mainFds <= before.mainFds + 2, `main process descriptors: ${before.mainFds} → ${after.mainFds}`);
  t.ok(after.workerFds <= before.workerFds + 5, `worker descriptors (all five): ${before.workerFds} → ${after.workerFds}`);
  t.equal(after.workers, 5, 'five workers');
  const grownMb = (after.mainRssKb - before.mainRssKb) / 1024;
  t.ok(grownMb < 40, `main process RSS grew by ${grownMb.toFixed(1)} MiB (< 40 MiB) over ${TOTAL} connections`);
  // A worker that kept its finished jobs (a pending timer holds a whole pipeline) grew by
  // some 30 KiB a job: 105 MiB over this run, against some 20 MiB of V8's own slack.
  const workersGrownMb = (after.workerRssKb - before.workerRssKb) / 1024;
  t.ok(workersGrownMb < 40, `the five workers' RSS grew by ${workersGrownMb.toFixed(1)} MiB in all (< 40 MiB)`);
  const lines = (): number => server.stderr().split('\n').filter(Boolean).length;
  // A worker's job is logged once its socket has closed: the last lines may still be on their way.
  await waitUntil(() => lines() >= (TOTAL + 200) / 4, 5_000, 'the log lines').catch(() => {});
  t.equal(lines(), (TOTAL + 200) / 4, 'one log line per bad connection, none for the good ones');
});

t.test('a rejected connection frees its descriptor as soon as the client has closed', async (t) => {
  const server = await startServer('enc_server');
  t.teardown(() => server.stop());
  const pid = server.child.pid!;
  await rawRoundTrip(server.port);
  await waitForSettledPool(pid, 5);
  const workerFds = (): number => serverFootprint(pid).workerFds;
  const base = workerFds();
  const mainBase = fdCount(pid);
  // Rejected before any job: a bad first byte (PROTOCOL), and after a whole HELLO (ROLE, VERSION).
  const kinds = [
    { what: 'garbage', input: Buffer.from('GET / HTTP/1.0\r\n\r\n'), code: ErrorCode.PROTOCOL },
    { what: 'wrong role', input: job('HELLO', 'WORLD', Role.DECRYPT), code: ErrorCode.ROLE },
    { what: 'wrong version', input: hello(Role.ENCRYPT, 9), code: ErrorCode.VERSION },
  ];
  for (const { what, input, code } of kinds) {
    const replies = await Promise.all(Array.from({ length: 30 }, () => exchange(server.port, input)));
    t.ok(replies.every((r) => errorCode(r) === code && r.endedByServer), `${what}: 30 connections each get ERROR ${code}, and closed by us`);
    const closedAt = Date.now();
    // The server reads on after its ERROR frame so that it sees the client close: it should
    // let go of the socket then, not hold it for the whole linger time.
    await waitUntil(() => workerFds() <= base + 1, LINGER_MS * 3, `${what}: descriptors back to ${base}`);
    const ms = Date.now() - closedAt;
    t.ok(ms < LINGER_MS / 2, `${what}: descriptors freed ${ms} ms after the clients closed (not held for LINGER_MS, ${LINGER_MS} ms)`);
  }
  t.equal(fdCount(pid), mainBase, 'the main process never held a client connection');
});
