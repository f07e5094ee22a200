// What a user sees when things go wrong: one line in the project's words, never Node's own text.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { reason } from '../src/cli/errors.js';
import { hostPort } from '../src/format/host-port.js';
import { bin, FIXTURES, freePort, run, startServer, type Result } from './helpers/programs.js';

/** Raw Node text that must never reach a user. */
const NODE_WORDS = /getaddrinfo|ENOTFOUND|ENOSPC|EAI_|Option '|<value>|argument missing|ambiguous|Did you forget|    at /;

function projectError(t: Test, r: Result, program: string, code: number, what: string): void {
  t.equal(r.code, code, `${what}: exit ${code}`);
  t.equal(r.stdout.length, 0, `${what}: nothing on stdout`);
  t.match(r.stderr, new RegExp(`^${program}: error: [^\\n]+\\n$`), `${what}: one line, '${program}: error: ...'`);
  t.notMatch(r.stderr, NODE_WORDS, `${what}: no raw Node text`);
}

t.test('reason(): system errors in plain words', async (t) => {
  const cases: [string, string][] = [
    ['ENOSPC', 'no space left on device'],
    ['EDQUOT', 'disk quota exceeded'],
    ['EFBIG', 'the file is too large'],
    ['EIO', 'input/output error'],
    ['EROFS', 'read-only file system'],
    ['EBADF', 'the file descriptor is not open'],
    ['ENOTFOUND', 'no such host'],
    ['EADDRINUSE', 'the port is in use'],
  ];
  for (const [code, words] of cases) {
    t.equal(reason(Object.assign(new Error(`${code}: something, write`), { code })), words, code);
  }
  const unknown = Object.assign(new Error('EXDEV: cross-device link not permitted, rename'), { code: 'EXDEV' });
  t.equal(reason(unknown), 'cross-device link not permitted', "an unknown code: Node's code and call are cut off");
  t.equal(reason(new Error('two\nlines')), 'two', 'a message that is not a system error: its first line');
});

t.test('hostPort(): IPv6 in brackets', async (t) => {
  t.equal(hostPort('::1', 5000), '[::1]:5000');
  t.equal(hostPort('::ffff:127.0.0.1', 5000), '[::ffff:127.0.0.1]:5000');
  t.equal(hostPort('127.0.0.1', 5000), '127.0.0.1:5000');
  t.equal(hostPort('example.com', 5000), 'example.com:5000');
});

t.test('servers: bad options and a host that does not exist', async (t) => {
  const port = String(await freePort());
  const cases: { args: string[]; says: RegExp }[] = [
    { args: ['--host', 'nosuchhost.invalid', port], says: /cannot listen on nosuchhost\.invalid:\d+: (no such host|the host name cannot be resolved)/ },
    { args: ['--workers'], says: /option '--workers' needs a value \(--workers N\)/ },
    { args: [port, '--workers'], says: /option '--workers' needs a value/ },
    { args: ['--host', '-v', port], says: /option '--host' needs a value, not the option '-v'/ },
    { args: ['--verbose=yes', port], says: /option '--verbose' takes no value/ },
    { args: ['--no-such-option', port], says: /unknown option '--no-such-option'/ },
    { args: ['-x', port], says: /unknown option '-x';/ },
    { args: ['-v=3', port], says: /unknown option '-=' in '-v=3'/ },
  ];
  const results = await Promise.all(cases.map((c) => run('enc_server', c.args)));
  cases.forEach((c, i) => {
    const what = `enc_server ${c.args.join(' ')}`;
    projectError(t, results[i], 'enc_server', 1, what);
    t.match(results[i].stderr, c.says, `${what}: says what is wrong`);
  });
});

t.test('keygen: a key length too large, an output that cannot be written', async (t) => {
  const [huge, justOver] = await Promise.all([run('keygen', ['99999999999999999999']), run('keygen', ['9007199254740992'])]);
  for (const r of [huge, justOver]) {
    projectError(t, r, 'keygen', 1, 'too large');
    t.match(r.stderr, /too large: the largest is 9007199254740991\n$/, 'too large: says the largest accepted');
  }

  if (!existsSync('/dev/full')) return void t.comment('no /dev/full here: not checked');
  const full = openSync('/dev/full', 'w');
  const child = spawn(bin('keygen'), ['5'], { stdio: ['ignore', full, 'pipe'] });
  closeSync(full);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = await once(child, 'close');
  projectError(t, { code, stdout: Buffer.alloc(0), stderr }, 'keygen', 1, 'keygen 5 > /dev/full');
  t.equal(stderr, 'keygen: error: cannot write the output: no space left on device\n', 'keygen 5 > /dev/full: the words');
});

t.test('a client pointed at something that is not an otp server', async (t) => {
  const http = createHttpServer((_req, res) => res.end('hello\n'));
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  t.teardown(() => void http.close());
  const port = String((http.address() as { port: number }).port);
  const key = join(t.testdir({ key: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ ABCDEFGHIJKLMNOPQRSTUVWXYZ\n' }), 'key');
  const text = join(FIXTURES, 'plaintext1');
  const results = await Promise.all([run('enc_client', [text, key, port]), run('dec_client', [text, key, port])]);
  for (const [program, r] of [['enc_client', results[0]], ['dec_client', results[1]]] as const) {
    projectError(t, r, program, 2, `${program} to an HTTP server`);
    const server = program === 'enc_client' ? 'an enc_server' : 'a dec_server';
    t.equal(r.stderr, `${program}: error: the server on port ${port} does not speak the otp protocol: is it ${server}?\n`, `${program}: the words`);
  }
});

t.test("a key given as '-'", async (t) => {
  const r = await run('enc_client', [join(FIXTURES, 'plaintext1'), '-', String(await freePort())], { stdin: 'ABC\n' });
  projectError(t, r, 'enc_client', 1, "key '-'");
  t.match(r.stderr, /the key cannot be '-': give it a path/, "key '-': says what to do instead");
});

t.test('IPv6 addresses in brackets, in client messages and server logs', async (t) => {
  const v6 = await new Promise<boolean>((resolve) => {
    const probe = createHttpServer().listen(0, '::1', () => probe.close(() => resolve(true)));
    probe.on('error', () => resolve(false));
  });
  if (!v6) return void t.comment('no IPv6 loopback here: not checked');

  const key = join(t.testdir({ key: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ ABCDEFGHIJKLMNOPQRSTUVWXYZ\n' }), 'key');
  const nobody = await freePort();
  const refused = await run('enc_client', ['--host', '::1', join(FIXTURES, 'plaintext1'), key, String(nobody)]);
  projectError(t, refused, 'enc_client', 2, 'client, nothing listens on ::1');
  t.match(refused.stderr, `at [::1]:${nobody}: connection refused`, 'client: [::1]:PORT');

  const server = await startServer('enc_server', [], {}, { host: '::1' });
  t.teardown(() => server.stop());
  const taken = await run('enc_server', ['--host', '::1', String(server.port)]);
  projectError(t, taken, 'enc_server', 1, 'server, port taken on ::1');
  t.match(taken.stderr, `cannot listen on [::1]:${server.port}: the port is in use`, 'server: [::1]:PORT');

  // A connection that is not otp gets logged with its address.
  const socket = connect(server.port, '::1');
  socket.on('error', () => {}).resume();
  socket.end('GET / HTTP/1.0\r\n\r\n');
  await once(socket, 'close');
  for (let i = 0; i < 200 && !server.stderr().includes('\n'); i++) await new Promise((r) => setTimeout(r, 25));
  t.match(server.stderr(), /^enc_server: \[::1\]:\d+: /m, 'server log: the peer as [::1]:PORT');
});

