// keygen end to end: usage errors, sizes, the alphabet, and a reader that goes away early.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import t from 'tap';
import { ROOT, run } from './helpers/programs.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ ';

t.test('usage errors', async (t) => {
  const cases: string[][] = [[], ['abc'], ['-5'], ['1.5'], ['10', '20'], [''], ['--no-such-option', '10']];
  const results = await Promise.all(cases.map((args) => run('keygen', args)));
  cases.forEach((args, i) => {
    const r = results[i];
    const what = `keygen ${args.map((a) => `'${a}'`).join(' ')}`;
    t.equal(r.code, 1, `${what}: exit 1`);
    t.equal(r.stdout.length, 0, `${what}: nothing on stdout`);
    t.match(r.stderr, /^[^\n]+\n$/, `${what}: stderr is exactly one line`);
    t.ok(r.stderr.startsWith('keygen'), `${what}: stderr starts with 'keygen'`);
    t.notOk(r.stderr.includes('    at '), `${what}: no stack trace`);
  });
});

t.test('sizes and the alphabet', async (t) => {
  const [zero, one, big, again] = await Promise.all([
    run('keygen', ['0']),
    run('keygen', ['1']),
    run('keygen', ['100000']),
    run('keygen', ['100000']),
  ]);
  t.equal(zero.code, 0, 'keygen 0: exit 0');
  t.equal(zero.stdout.toString('latin1'), '\n', 'keygen 0: just a newline');
  t.equal(zero.stderr, '', 'keygen 0: nothing on stderr');
  t.equal(one.code, 0, 'keygen 1: exit 0');
  t.match(one.stdout.toString('latin1'), /^[A-Z ]\n$/, 'keygen 1: one symbol and a newline');

  t.equal(big.code, 0, 'keygen 100000: exit 0');
  t.equal(big.stderr, '', 'keygen 100000: nothing on stderr');
  t.equal(big.stdout.length, 100001, 'keygen 100000: 100000 symbols and a newline');
  const key = big.stdout.toString('latin1');
  t.match(key, /^[A-Z ]{100000}\n$/, 'keygen 100000: only alphabet symbols, then the newline');
  const counts = new Map<string, number>();
  for (const c of key.slice(0, -1)) counts.set(c, (counts.get(c) ?? 0) + 1);
  t.same([...counts.keys()].sort(), [...ALPHABET].sort(), 'keygen 100000: all 27 symbols appear');
  // Chi-square against the uniform distribution, 26 degrees of freedom: a fair draw stays
  // under 100 but for a chance far below 1e-9; 'random byte % 27' (modulo bias) gives ~280.
  const expected = 100000 / 27;
  const chiSquare = [...counts.values()].reduce((sum, n) => sum + (n - expected) ** 2 / expected, 0);
  t.ok(chiSquare < 100, `keygen 100000: symbols uniform, no modulo bias (chi-square ${chiSquare.toFixed(1)} < 100)`);
  t.not(key, again.stdout.toString('latin1'), 'two keys differ');
});

t.test('a reader that goes away: keygen 10000000000 | head -c 100', async (t) => {
  const child = spawn(join(ROOT, 'keygen'), ['10000000000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  // 'close' comes after the exit and after stderr has been read to its end.
  const closed = once(child, 'close');
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));

  const head = await new Promise<Buffer>((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 100) return;
      child.stdout.off('data', onData);
      child.stdout.destroy();
      resolve(got.subarray(0, 100));
    };
    child.stdout.on('data', onData);
    child.stdout.once('end', () => reject(new Error(`keygen's output ended after ${got.length} bytes`)));
  });
  t.match(head.toString('latin1'), /^[A-Z ]{100}$/, 'the first 100 bytes are symbols');

  const start = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    exited.then(([code, signal]) => ({ code, signal })),
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 10_000))),
  ]);
  clearTimeout(timer);
  t.not(outcome, 'timeout', `keygen exits once its reader is gone (within 10 s; took ${Date.now() - start} ms)`);
  if (outcome === 'timeout') return;
  t.equal(outcome.code, 0, 'keygen exits 0');
  t.equal(outcome.signal, null, 'keygen is not killed by a signal (SIGPIPE)');
  await closed;
  t.equal(stderr, '', 'nothing on stderr: no EPIPE error, no stack trace');
});
