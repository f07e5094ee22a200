// --offset and --no-reuse end to end: concurrent jobs get disjoint key ranges, used ranges are refused,
// the ledger survives kill -9 and is never reset, stdin gets a stretch and gives back what it did not use,
// and a ledger or lock that is not one is refused at once.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { mkfifo, present } from './helpers/files.js';
import { bin, FIXTURES, run, startServer, type Result } from './helpers/programs.js';
import { model } from './helpers/wire.js';

const USED = /^enc_client: used key symbols (\d+)-(\d+) of '([^']+)'; decrypt with: dec_client --offset (\d+) CIPHERTEXT (\S+) PORT\n$/;

interface Used {
  first: number;
  last: number;
}

/** The range in enc_client's success line; fails the test when the line is not exactly that. */
function usedRange(t: Test, result: Result, key: string, what: string): Used {
  const m = USED.exec(result.stderr);
  t.ok(m, `${what}: stderr is the one 'used key symbols' line (got ${JSON.stringify(result.stderr)})`);
  if (!m) return { first: -1, last: -1 };
  t.equal(m[3], key, `${what}: the line names the key`);
  t.equal(m[4], m[1], `${what}: the command's offset is the first symbol used`);
  t.equal(m[5], key, `${what}: the command names the key`);
  return { first: Number(m[1]), last: Number(m[2]) };
}

/** An input error: exit 1, one line on stderr, nothing on stdout. */
function refused(t: Test, result: Result, pattern: RegExp, what: string): void {
  t.equal(result.code, 1, `${what}: exit 1`);
  t.equal(result.stdout.length, 0, `${what}: nothing on stdout`);
  t.match(result.stderr, /^enc_client: error: [^\n]+\n$/, `${what}: one line`);
  t.match(result.stderr, pattern, `${what}: says why`);
}

/** The ledger's ranges for its one key, as written: '0-35,72-107'. */
function ledgerRanges(path: string): string {
  const lines = readFileSync(path, 'latin1').split('\n');
  return lines.length === 3 ? lines[1].split(' ')[1] : `(${lines.length - 2} keys)`;
}

/** A fake enc_server that takes connections and every byte, and never answers. */
async function silentServer(t: Test): Promise<{ port: number; connections: () => number; first: Promise<void> }> {
  const sockets = new Set<Socket>();
  let count = 0;
  let resolveFirst!: () => void;
  const first = new Promise<void>((resolve) => (resolveFirst = resolve));
  // allowHalfOpen: the client's FIN after END must not close the fake's side.
  const server: NetServer = createServer({ allowHalfOpen: true }, (socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('data', () => {});
    resolveFirst();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as { port: number }).port, connections: () => count, first };
}

/**
 * Runs enc_client, killed at `deadlineMs` if it has not ended (a client blocked on a FIFO
 * never does), and under a 2 GiB address space, so that one reading a device without end
 * fails in a moment instead of taking the machine's memory.
 */
async function encryptWithin(args: string[], env: NodeJS.ProcessEnv, deadlineMs = 20_000): Promise<Result & { timedOut: boolean }> {
  const child = spawn('prlimit', [`--as=${2 * 1024 ** 3}`, '--', bin('enc_client'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, deadlineMs);
  const [code] = await once(child, 'close');
  clearTimeout(timer);
  return { code: code as number | null, stdout: Buffer.concat(stdout), stderr, timedOut };
}

// Some sixty client processes, twenty at once: on a loaded machine more than tap's default 120 s.
t.setTimeout(300_000);

t.test('--offset and --no-reuse', async (t) => {
  const [enc, dec] = await Promise.all([startServer('enc_server'), startServer('dec_server')]);
  t.teardown(() => enc.stop());
  t.teardown(() => dec.stop());
  const dir = t.testdir({});
  const textPath = join(FIXTURES, 'plaintext1');
  const text = readFileSync(textPath, 'latin1').replace(/\n$/, '');
  const n = text.length;
  const key = join(dir, 'key');
  const JOBS = 20;
  const keyLength = JOBS * n + 200;
  writeFileSync(key, (await run('keygen', [String(keyLength)])).stdout);
  const keyText = readFileSync(key, 'latin1').slice(0, keyLength);
  const ledger = join(dir, 'state', 'ledger');
  const env = { OTP_LEDGER: ledger };
  const encrypt = (args: string[], more: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> =>
    run('enc_client', [...args, String(enc.port)], { stdin: more.stdin, env: { ...env, ...more.env } });

  await t.test('without the options: as before, and no ledger', async (t) => {
    const r = await encrypt([textPath, key]);
    t.equal(r.code, 0, 'exit 0');
    t.equal(r.stderr, '', 'nothing on stderr');
    t.equal(r.stdout.toString('latin1'), `${model('encrypt', text, keyText)}\n`, 'the key from its first symbol');
    t.notOk(existsSync(ledger), 'no ledger is made');
  });

  await t.test('--offset on both clients', async (t) => {
    const offset = 57;
    const last = keyLength - n;
    const bads = ['-1', 'x', '1e3', '0x10', ' 2', '007', '', '9007199254740993'];
    // All independent: run at once.
    const [r, fromStdin, fits, shortFile, shortStdin, ...badResults] = await Promise.all([
      encrypt(['--offset', String(offset), textPath, key]),
      encrypt(['--offset', String(offset), '-', key], { stdin: `${text}\n` }),
      encrypt(['--offset', String(last), textPath, key]),
      encrypt(['--offset', String(last + 1), textPath, key]),
      encrypt(['--offset', String(last + 1), '-', key], { stdin: `${text}\n` }),
      ...bads.map((bad) => encrypt(['--offset', bad, textPath, key])),
    ]);
    t.equal(r.code, 0, 'enc_client --offset: exit 0');
    t.equal(r.stderr, '', 'enc_client --offset: nothing on stderr');
    const cipher = model('encrypt', text, keyText.slice(offset));
    t.equal(r.stdout.toString('latin1'), `${cipher}\n`, 'enc_client --offset: the key from symbol 57');
    t.equal(fromStdin.stdout.toString('latin1'), `${cipher}\n`, 'stdin with --offset: the same');
    t.equal(fits.code, 0, "a text that ends at the key's last symbol fits");
    for (const [what, short] of [['file', shortFile], ['stdin', shortStdin]] as const) {
      t.equal(short.code, 1, `${what}: one symbol past the key: exit 1`);
      t.match(short.stderr, new RegExp(`^enc_client: error: key '.*key' is too short: ${keyLength} symbols for (a ${n}-symbol text|a text of at least ${n} symbols) at offset ${last + 1}\\n$`), `${what}: the error names both numbers`);
    }
    for (const [i, bad] of bads.entries()) {
      const r = badResults[i];
      t.equal(r.code, 1, `--offset '${bad}': exit 1`);
      t.equal(r.stdout.length, 0, `--offset '${bad}': nothing on stdout`);
      const why = bad === '-1' ? /^enc_client: error: option '--offset' .*; usage: / : /^enc_client: error: --offset '.*' is not a key position/;
      t.match(r.stderr, why, `--offset '${bad}': says so`);
      t.match(r.stderr, /^[^\n]+\n$/, `--offset '${bad}': in one line`);
    }

    const cipherPath = join(dir, 'cipher-offset');
    writeFileSync(cipherPath, r.stdout);
    const [back, decShort] = await Promise.all([
      run('dec_client', ['--offset', String(offset), cipherPath, key, String(dec.port)]),
      run('dec_client', ['--offset', String(last + 1), cipherPath, key, String(dec.port)]),
    ]);
    t.equal(back.code, 0, 'dec_client --offset: exit 0');
    t.equal(back.stdout.toString('latin1'), `${text}\n`, 'dec_client --offset: the text back');
    t.equal(decShort.code, 1, 'dec_client past the key: exit 1');
    t.equal(decShort.stdout.length, 0, 'dec_client past the key: nothing on stdout');
    t.notOk(existsSync(ledger), 'still no ledger');
  });

  const used: Used[] = [];
  await t.test(`${JOBS} concurrent --no-reuse jobs with one key`, async (t) => {
    const results = await Promise.all(Array.from({ length: JOBS }, () => encrypt(['--no-reuse', textPath, key])));
    results.forEach((r, i) => {
      t.equal(r.code, 0, `job ${i}: exit 0`);
      used.push(usedRange(t, r, key, `job ${i}`));
    });
    for (const [i, u] of used.entries()) {
      t.equal(u.last - u.first + 1, n, `job ${i}: as many symbols as the text`);
      for (const [j, v] of used.entries()) {
        if (j > i && !(u.last < v.first || v.last < u.first)) t.fail(`jobs ${i} and ${j} share key symbols`);
      }
    }
    const starts = used.map((u) => u.first).sort((a, b) => a - b);
    t.same(starts, Array.from({ length: JOBS }, (_, i) => i * n), 'together they are the lowest that fit: 0, n, 2n, ...');
    t.equal(ledgerRanges(ledger), `0-${JOBS * n - 1}`, 'the ledger holds them all');
    t.equal(readFileSync(ledger, 'latin1').includes(keyText.slice(0, 16)), false, 'the ledger holds no key material');
    await Promise.all(
      results.map(async (r, i) => {
        t.equal(r.stdout.toString('latin1'), `${model('encrypt', text, keyText.slice(used[i].first))}\n`, `job ${i}: the cipher of its own range`);
        const cipherPath = join(dir, `cipher-${i}`);
        writeFileSync(cipherPath, r.stdout);
        const back = await run('dec_client', ['--offset', String(used[i].first), cipherPath, key, String(dec.port)]);
        t.equal(back.stdout.toString('latin1'), `${text}\n`, `job ${i}: decrypts with its own --offset`);
      }),
    );
  });

  await t.test('a used range is refused, and nothing is sent', async (t) => {
    const before = readFileSync(ledger, 'latin1');
    // These never touch the ledger: run at once.
    const [first, end, stdinUsed, shortKey, notFile, offsetNotFile, decNoReuse] = await Promise.all([
      encrypt(['--no-reuse', '--offset', '0', textPath, key]),
      encrypt(['--no-reuse', '--offset', String(JOBS * n - 5), textPath, key]),
      encrypt(['--no-reuse', '--offset', '3', '-', key], { stdin: `${text}\n` }),
      encrypt(['--no-reuse', textPath, join(FIXTURES, 'plaintext3')]),
      encrypt(['--no-reuse', textPath, '/dev/null']),
      encrypt(['--offset', '1', textPath, '/dev/null']),
      run('dec_client', ['--no-reuse', textPath, key, '1']),
    ]);
    refused(t, first, new RegExp(`symbols 0-${n - 1} of key '.*key' were used`), "the first job's range");
    refused(t, end, new RegExp(`symbols ${JOBS * n - 5}-${JOBS * n - 1} of key`), 'a range that overlaps the end of the used ones');
    refused(t, stdinUsed, /symbol 3 of key '.*key' was used/, 'stdin from a used symbol');
    refused(t, shortKey, /at least 64 symbols/, 'a key too short to be named');
    refused(t, notFile, /--no-reuse needs the key in a regular file/, 'a key that is not a file');
    refused(t, offsetNotFile, /--offset needs the key in a regular file/, '--offset with a key that is not a file');
    t.equal(decNoReuse.code, 1, 'dec_client has no --no-reuse');
    // This one reserves a stretch and gives it back: alone, so that the others see the ledger as it was.
    refused(t, await encrypt(['--no-reuse', '-', key], { stdin: `${'X'.repeat(300)}\n` }), new RegExp(`has 200 unused symbols in a row from offset ${JOBS * n}: too few`), 'stdin longer than the longest unused stretch');
    t.equal(readFileSync(ledger, 'latin1'), before, 'the refusals changed nothing in the ledger');
    const nothingFits = await encrypt(['--no-reuse', join(FIXTURES, 'plaintext2'), key]);
    refused(t, nothingFits, new RegExp(`has no \\d+ unused symbols in a row .*: ${JOBS * n} of its ${keyLength} symbols are used, the longest unused stretch is 200`), 'no stretch long enough');
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    const none = await encrypt(['--no-reuse', empty, key]);
    t.equal(none.code, 0, 'an empty text: exit 0');
    t.equal(none.stderr, `enc_client: used no key symbols of '${key}' (the text is empty)\n`, 'an empty text uses no key symbols');
    t.equal(readFileSync(ledger, 'latin1'), before, 'and records none');
  });

  await t.test('stdin gets the longest stretch and gives back what it did not use', async (t) => {
    const r = await encrypt(['--no-reuse', '-', key], { stdin: 'HELLO\n' });
    t.equal(r.code, 0, 'exit 0');
    t.same(usedRange(t, r, key, 'stdin'), { first: JOBS * n, last: JOBS * n + 4 }, 'five symbols after the used ones');
    t.equal(ledgerRanges(ledger), `0-${JOBS * n + 4}`, 'the ledger keeps only those five');
    t.equal(r.stdout.toString('latin1'), `${model('encrypt', 'HELLO', keyText.slice(JOBS * n))}\n`, 'with those key symbols');
  });

  await t.test('the ledger survives kill -9 of a client mid-job, with the range recorded', async (t) => {
    const silent = await silentServer(t);
    const child = spawn(bin('enc_client'), ['--no-reuse', textPath, key, String(silent.port)], {
      stdio: 'ignore',
      env: { ...process.env, ...env },
    });
    const exited = once(child, 'exit');
    await Promise.race([
      silent.first,
      exited.then(() => {
        throw new Error('the client exited before it connected');
      }),
    ]);
    const from = JOBS * n + 5;
    t.equal(ledgerRanges(ledger), `0-${from + n - 1}`, 'the range is recorded before the client connects');
    t.notOk(present(`${ledger}.lock`), 'and the lock is released before it sends');
    child.kill('SIGKILL');
    const [, signal] = await exited;
    t.equal(signal, 'SIGKILL', 'the client was killed');
    t.equal(ledgerRanges(ledger), `0-${from + n - 1}`, 'the range stays recorded');
    const next = await encrypt(['--no-reuse', textPath, key]);
    t.same(usedRange(t, next, key, 'the next job'), { first: from + n, last: from + 2 * n - 1 }, 'the next job takes the symbols after it');
  });

  await t.test('a lock left by a killed process is broken', async (t) => {
    const dead = spawn(process.execPath, ['-e', '0']);
    await once(dead, 'exit');
    symlinkSync(`${hostname()}:${dead.pid}:0`, `${ledger}.lock`);
    const r = await encrypt(['--no-reuse', '--offset', String(keyLength - n), textPath, key]);
    t.equal(r.code, 0, 'the job goes on');
    t.notOk(present(`${ledger}.lock`), 'no lock is left');
  });

  await t.test('a damaged or unreadable ledger is refused: exit 1, nothing sent, never reset', async (t) => {
    const silent = await silentServer(t);
    const damaged = join(dir, 'damaged');
    const content = `${readFileSync(ledger, 'latin1')}not a ledger line\n`;
    writeFileSync(damaged, content);
    const r = await run('enc_client', ['--no-reuse', textPath, key, String(silent.port)], { env: { OTP_LEDGER: damaged } });
    refused(t, r, /the ledger '.*damaged' is damaged at line 3/, 'damaged');
    t.equal(readFileSync(damaged, 'latin1'), content, 'the ledger is left as it was');
    const unreadable = await run('enc_client', ['--no-reuse', textPath, key, String(silent.port)], { env: { OTP_LEDGER: dir } });
    refused(t, unreadable, /^enc_client: error: the ledger '.*' is a directory, not a regular file\n$/, 'a directory');
    t.equal(silent.connections(), 0, 'nothing was sent');
  });

  await t.test('a ledger that is not a regular file: refused at once with exit 1, nothing locked, created or sent', async (t) => {
    const silent = await silentServer(t);
    const odd = join(dir, 'not-files');
    mkdirSync(odd);
    const fifo = join(odd, 'fifo');
    mkfifo(fifo);
    symlinkSync(fifo, join(odd, 'to-fifo'));
    symlinkSync('/dev/zero', join(odd, 'to-zero'));
    const cases: [string, string, RegExp][] = [
      ['a FIFO', fifo, /the ledger '.*fifo' is a FIFO, not a regular file/],
      ['a symlink to a FIFO', join(odd, 'to-fifo'), /the ledger '.*to-fifo' is a FIFO, not a regular file/],
      ['/dev/zero', '/dev/zero', /the ledger '\/dev\/zero' is a character device, not a regular file/],
      ['/dev/full', '/dev/full', /the ledger '\/dev\/full' is a character device, not a regular file/],
      ['a symlink to /dev/zero', join(odd, 'to-zero'), /the ledger '.*to-zero' is a character device, not a regular file/],
      ['a name under a FIFO', join(fifo, 'ledger'), /cannot read the ledger '.*fifo\/ledger': not a directory/],
    ];
    const before = readdirSync(odd).sort();
    const results = await Promise.all(cases.map(([, ledger]) => encryptWithin(['--no-reuse', textPath, key, String(silent.port)], { OTP_LEDGER: ledger })));
    for (const [i, [what, ledger, why]] of cases.entries()) {
      t.notOk(results[i].timedOut, `${what}: the client ends by itself`);
      refused(t, results[i], why, what);
      if (ledger.startsWith('/dev/')) t.notOk(present(`${ledger}.lock`), `${what}: no lock beside it`);
    }
    t.same(readdirSync(odd).sort(), before, 'nothing was created beside them');
    t.ok(statSync(fifo).isFIFO(), 'the FIFO is left as it was');
    t.equal(silent.connections(), 0, 'nothing was sent');
  });

  await t.test('a lock that is not one: refused at once with exit 1, left alone, nothing sent', async (t) => {
    const silent = await silentServer(t);
    const odd = join(dir, 'odd');
    mkdirSync(odd);
    // The lock's name taken by a FIFO; and a dead lock whose breaker's name is taken by a file.
    const fifoLock = join(odd, 'fifo-lock', 'ledger');
    mkdirSync(join(odd, 'fifo-lock'));
    mkfifo(`${fifoLock}.lock`);
    const fileBreak = join(odd, 'file-break', 'ledger');
    mkdirSync(join(odd, 'file-break'));
    const dead = spawn(process.execPath, ['-e', '0']);
    await once(dead, 'exit');
    symlinkSync(`${hostname()}:${dead.pid}:0`, `${fileBreak}.lock`);
    writeFileSync(`${fileBreak}.lock.break`, '');
    const cases: [string, string, RegExp][] = [
      ['a FIFO at the lock', fifoLock, /cannot lock the ledger '.*': '.*fifo-lock\/ledger\.lock' is a FIFO, not a lock; move it away/],
      ['a file at the breaker', fileBreak, /cannot lock the ledger '.*': '.*file-break\/ledger\.lock\.break' is a regular file, not a lock; move it away/],
    ];
    const before = JSON.stringify(['fifo-lock', 'file-break'].map((d) => readdirSync(join(odd, d)).sort()));
    const results = await Promise.all(cases.map(([, ledger]) => encryptWithin(['--no-reuse', textPath, key, String(silent.port)], { OTP_LEDGER: ledger })));
    for (const [i, [what, , why]] of cases.entries()) {
      t.notOk(results[i].timedOut, `${what}: the client ends by itself`);
      refused(t, results[i], why, what);
    }
    t.equal(JSON.stringify(['fifo-lock', 'file-break'].map((d) => readdirSync(join(odd, d)).sort())), before, 'nothing was created or removed beside them');
    t.equal(silent.connections(), 0, 'nothing was sent');
  });
});
