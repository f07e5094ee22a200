// Faults: clients and workers killed mid-job, the main process killed under a job, a
// reader that goes away, files that cannot be read, where the server listens, and what
// a client of the wrong role learns. (Stopping by signal: server-signals.test.ts.)
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ErrorCode, FrameType, Role } from '../src/protocol/frames.js';
import { bin, freePort, run, startServer, type Server } from './helpers/programs.js';
import {
  canConnect,
  childrenOf,
  decodeFrames,
  errorCode,
  exchange,
  frameTypes,
  job,
  model,
  pgrepExact,
  processState,
  randomSymbols,
  rawRoundTrip,
  runWithin,
  tempDir,
  waitUntil,
} from './helpers/wire.js';

const BIG = 16 << 20;

// The cases are independent (each has its own server): run two at a time.
t.jobs = 2;

interface Files {
  dir: string;
  small: string;
  smallKey: string;
  smallExpected: string;
  big: string;
  bigKey: string;
}

let files: Files;

t.before(() => {
  const dir = tempDir(t);
  const text = randomSymbols(300);
  const key = randomSymbols(300);
  writeFileSync(join(dir, 'small'), `${text}\n`);
  writeFileSync(join(dir, 'smallkey'), `${key}\n`);
  writeFileSync(join(dir, 'big'), `${randomSymbols(BIG)}\n`);
  writeFileSync(join(dir, 'bigkey'), `${randomSymbols(BIG)}\n`);
  files = {
    dir,
    small: join(dir, 'small'),
    smallKey: join(dir, 'smallkey'),
    smallExpected: `${model('encrypt', text, key)}\n`,
    big: join(dir, 'big'),
    bigKey: join(dir, 'bigkey'),
  };
});

/** A real enc_client job on the small files succeeds. */
async function goodJob(t: Test, server: Server, what: string): Promise<void> {
  const result = await run('enc_client', [files.small, files.smallKey, String(server.port)]);
  t.equal(result.code, 0, `${what}: enc_client exits 0`);
  t.equal(result.stdout.toString(), files.smallExpected, `${what}: with the right ciphertext`);
}

/** A client started on the big files, its stdout piped; resolves once its first output bytes arrive. */
async function bigClient(t: Test, server: Server, args: string[] = []): Promise<{ child: ChildProcess; stderr: () => string; exit: Promise<[number | null, NodeJS.Signals | null]> }> {
  const child = spawn(bin('enc_client'), [files.big, files.bigKey, String(server.port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  await once(child.stdout!, 'data');
  child.stdout!.pause(); // the client now blocks on its stdout, and the server on the client: mid-stream
  return { child, stderr: () => stderr, exit };
}

t.test('a client killed mid-stream frees its worker', async (t) => {
  // One worker: the next job can only be served once the killed client's worker is free.
  // Default timeouts: freed by the broken connection, not by the 30 s idle timeout.
  const server = await startServer('enc_server', ['--workers', '1']);
  t.teardown(() => server.stop());
  const client = await bigClient(t, server);
  client.child.kill('SIGKILL');
  await client.exit;
  const next = await runWithin('enc_client', [files.small, files.smallKey, String(server.port)], 10_000);
  t.equal(next.code, 0, 'the next job is served');
  t.equal(next.stdout.toString(), files.smallExpected, 'correctly');
  t.ok(next.ms < 10_000, `in ${next.ms} ms, well inside the 30 s idle timeout`);
  await waitUntil(() => /broken|failed/.test(server.stderr()), 5_000, 'a log line for the killed client').catch(() => {});
  t.equal(server.stderr().split('\n').filter(Boolean).length, 1, 'one log line for the killed client');
  t.same(childrenOf(server.child.pid!).length, 1, 'the worker is still there');
});

t.test('a client killed mid-stream: the pool is still five', async (t) => {
  const server = await startServer('enc_server');
  t.teardown(() => server.stop());
  await waitUntil(() => childrenOf(server.child.pid!).length === 5, 10_000, 'five workers');
  const workers = childrenOf(server.child.pid!);
  const client = await bigClient(t, server);
  client.child.kill('SIGKILL');
  await client.exit;
  await goodJob(t, server, 'after the kill');
  t.same(childrenOf(server.child.pid!).sort(), workers.sort(), 'the same five workers');
});

t.test('a worker killed with SIGKILL is replaced', async (t) => {
  const server = await startServer('enc_server');
  t.teardown(() => server.stop());
  const pid = server.child.pid!;
  await waitUntil(() => childrenOf(pid).length === 5, 10_000, 'five workers');
  const [victim] = childrenOf(pid);
  process.kill(victim, 'SIGKILL');
  await waitUntil(() => childrenOf(pid).length === 5 && !childrenOf(pid).includes(victim), 10_000, 'a fifth worker again');
  t.pass('back to five workers');
  t.equal(processState(victim), null, 'the killed worker is reaped, not a zombie');
  const logged = new RegExp(`^enc_server: worker ${victim} was killed by SIGKILL; starting another$`, 'm');
  await waitUntil(() => logged.test(server.stderr()), 5_000, 'the log line').catch(() => {});
  t.match(server.stderr(), logged, 'the server logs it in one line');
  await goodJob(t, server, 'after one worker was killed');

  const all = childrenOf(pid);
  for (const w of all) process.kill(w, 'SIGKILL');
  await waitUntil(() => {
    const now = childrenOf(pid);
    return now.length === 5 && now.every((w) => !all.includes(w));
  }, 10_000, 'five new workers');
  t.pass('all five killed at once: five new workers');
  t.same(all.map(processState), [null, null, null, null, null], 'none of them left a zombie');
  await goodJob(t, server, 'after all five were killed');
});

t.test('a worker killed under a job: the client exits 2 with one line, the pool recovers', async (t) => {
  const server = await startServer('enc_server');
  t.teardown(() => server.stop());
  const pid = server.child.pid!;
  const client = await bigClient(t, server);
  const workers = childrenOf(pid);
  for (const w of workers) process.kill(w, 'SIGKILL'); // the one serving is among them
  client.child.stdout!.resume();
  const [code] = await client.exit;
  t.equal(code, 2, 'the client exits 2');
  t.match(client.stderr(), /^enc_client: error: [^\n]+\n$/, 'with a one-line message');
  t.notOk(client.stderr().includes('    at '), 'and no stack trace');
  await waitUntil(() => childrenOf(pid).length === 5, 10_000, 'five workers');
  await goodJob(t, server, 'after the workers were replaced');
});

t.test('the main process dying mid-stream: the job in flight finishes, then the orphaned workers leave', async (t) => {
  const server = await startServer('enc_server');
  t.teardown(() => server.stop());
  const pid = server.child.pid!;
  await waitUntil(() => childrenOf(pid).length === 5, 30_000, 'five workers');
  const workers = childrenOf(pid);
  t.equal(workers.length, 5, 'five workers to watch');
  const client = await bigClient(t, server);
  process.kill(pid, 'SIGKILL');
  client.child.stdout!.resume();
  const [code] = await client.exit;
  t.equal(code, 0, 'the client exits 0: its worker finished the job');
  t.equal(client.stderr(), '', 'with nothing on stderr');
  await waitUntil(async () => !(await canConnect(server.port)), 5_000, 'the port to close');
  t.pass('nobody accepts on the port any more');
  // Orphaned, the workers leave once their jobs are done.
  await waitUntil(() => workers.every((w) => processState(w) === null || processState(w) === 'Z'), 10_000, 'the workers to exit');
  t.pass('the orphaned workers exit');
});

t.test('pgrep -x finds the servers and their workers by name', async (t) => {
  const [enc, dec] = await Promise.all([startServer('enc_server'), startServer('dec_server')]);
  t.teardown(() => enc.stop());
  t.teardown(() => dec.stop());
  for (const [name, server] of [['enc_server', enc], ['dec_server', dec]] as const) {
    const pid = server.child.pid!;
    await waitUntil(() => childrenOf(pid).length === 5, 10_000, `five ${name} workers`);
    // A forked worker takes its name when its code starts running: poll for that.
    const named = (): boolean => {
      const found = pgrepExact(name);
      return found.includes(pid) && childrenOf(pid).every((w) => found.includes(w));
    };
    await waitUntil(named, 10_000, `pgrep -x ${name} to find all`).catch(() => {});
    const found = pgrepExact(name);
    t.ok(found.includes(pid), `pgrep -x ${name} finds the main process`);
    t.same(childrenOf(pid).filter((w) => found.includes(w)).length, 5, `and its five workers`);
  }
});

t.test('enc_client | head -c 10: the client exits quietly', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1']);
  t.teardown(() => server.stop());
  const client = spawn(bin('enc_client'), [files.big, files.bigKey, String(server.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void client.kill('SIGKILL'));
  let stderr = '';
  client.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = once(client, 'exit');
  let got = 0;
  await new Promise<void>((resolve) => {
    client.stdout!.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got >= 10) {
        client.stdout!.destroy(); // the reader goes away, like head after 10 bytes
        resolve();
      }
    });
  });
  const [code, signal] = await exit;
  t.equal(signal, null, 'not killed by a signal');
  t.equal(code, 0, 'exit 0');
  t.equal(stderr, '', 'nothing on stderr');
  await goodJob(t, server, 'the server afterwards');
});

t.test('files that cannot be read: exit 1, one line', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1']);
  t.teardown(() => server.stop());
  const dir = tempDir(t);
  const folder = join(dir, 'folder');
  mkdirSync(folder);
  const missing = join(dir, 'missing');
  const cases: [string, string[], string][] = [
    ['missing text', [missing, files.smallKey], missing],
    ['missing key', [files.small, missing], missing],
    ['directory as text', [folder, files.smallKey], folder],
    ['directory as key', [files.small, folder], folder],
  ];
  if (process.getuid?.() === 0) {
    // root reads a chmod 000 file anyway: the unreadable-by-permission case cannot be made here.
    t.comment('running as root: the chmod 000 case is skipped');
  } else {
    const locked = join(dir, 'locked');
    writeFileSync(locked, 'ABC\n', { mode: 0o000 });
    cases.push(['unreadable text', [locked, files.smallKey], locked]);
  }
  for (const [what, args, name] of cases) {
    const result = await run('enc_client', [...args, String(server.port)]);
    t.equal(result.code, 1, `${what}: exit 1`);
    t.equal(result.stdout.length, 0, `${what}: nothing on stdout`);
    t.match(result.stderr, /^enc_client: error: [^\n]+\n$/, `${what}: one line on stderr`);
    t.ok(result.stderr.includes(name), `${what}: it names the file`);
  }
  t.equal(server.stderr(), '', 'the server never heard of them');
});

t.test('servers listen on loopback only by default; --host picks the address', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1']);
  t.teardown(() => server.stop());
  const outside = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal);
  if (outside) {
    t.notOk(await canConnect(server.port, outside.address), `nothing answers on ${outside.address}:${server.port}`);
    t.ok(await canConnect(server.port, '127.0.0.1'), 'while 127.0.0.1 answers');
  } else {
    t.comment('no non-loopback IPv4 address on this machine: the default-address check is skipped');
  }

  const port = await freePort();
  const other = await startServer('enc_server', ['--workers', '1'], {}, { host: '127.0.0.2', port });
  t.teardown(() => other.stop());
  t.notOk(await canConnect(port, '127.0.0.1'), '--host 127.0.0.2: nothing on 127.0.0.1');
  await rawRoundTrip(port, 20).then(
    () => t.fail('a job reached 127.0.0.1'),
    () => t.pass('no job on 127.0.0.1'),
  );
  const result = await run('enc_client', [files.small, files.smallKey, String(port), '--host', '127.0.0.2']);
  t.equal(result.code, 0, 'enc_client --host 127.0.0.2 is served there');
  t.equal(result.stdout.toString(), files.smallExpected, 'correctly');
});

t.test('a client of the wrong role gets the rejection and nothing else', async (t) => {
  // One worker each is enough here: the rejection comes before any job starts.
  const [enc, dec] = await Promise.all([startServer('enc_server', ['--workers', '1']), startServer('dec_server', ['--workers', '1'])]);
  t.teardown(() => enc.stop());
  t.teardown(() => dec.stop());
  for (const [server, role, name] of [
    [enc, Role.DECRYPT, 'a dec_client at the enc_server'],
    [dec, Role.ENCRYPT, 'an enc_client at the dec_server'],
  ] as const) {
    const reply = await exchange(server.port, job('HELLO WORLD', 'SECRET KEYS', role));
    t.same(frameTypes(reply), [FrameType.ERROR], `${name}: one ERROR frame`);
    t.equal(errorCode(reply), ErrorCode.ROLE, `${name}: code ROLE`);
    const only = await decodeFrames(reply.bytes);
    t.equal(reply.bytes.length, 5 + only.frames[0].payload.length, `${name}: not one byte more`);
    t.equal(reply.frames[0].payload.subarray(1).toString(), 'this server does not serve your role', `${name}: a message that says no more`);
  }
  const wrong = await run('dec_client', [files.small, files.smallKey, String(enc.port)]);
  t.equal(wrong.code, 2, 'dec_client at an enc_server exits 2');
  t.equal(wrong.stdout.length, 0, 'with nothing on stdout');
  t.match(wrong.stderr, /^dec_client: error: [^\n]*rejected[^\n]*\n$/, 'and one line saying it was rejected');
});
