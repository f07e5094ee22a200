// Strict configuration: a bad port, count, host or timeout is a usage error (exit 1, one
// line naming it), never a silent default, a 1 ms timer or all interfaces.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import t from 'tap';
import { bin } from './helpers/programs.js';

async function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(bin('enc_server'), args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // A server that took a bad value would run: give it a while, then stop it.
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code] = await once(child, 'exit');
  clearTimeout(timer);
  return { code: code as number | null, stderr };
}

const cases: { what: string; args: string[]; env?: NodeJS.ProcessEnv; says: RegExp }[] = [
  ...['0x10', ' 2', '1e1', '00080', '080', '0', '65536', '+80', ''].map((port) => ({
    what: `port '${port}'`,
    args: [port],
    says: /is not a port: give a number from 1 to 65535/,
  })),
  ...['0x10', ' 2', '1e1', '0', '65', '05', ''].map((n) => ({ what: `--workers '${n}'`, args: ['4000', '--workers', n], says: /--workers '.*' is not a number from 1 to 64/ })),
  { what: '--jobs 0', args: ['4000', '--jobs', '0'], says: /--jobs '0' is not a number from 1 to 1024/ },
  { what: '--connections 1e3', args: ['4000', '--connections', '1e3'], says: /--connections '1e3' is not a number from 1 to 16384/ },
  { what: "--host ''", args: ['4000', '--host', ''], says: /--host '' is not an address/ },
  // Every bad form in one variable (the unit test has them all for each), and each variable once.
  ...[
    ...['0', '2147483648', '1e3', '0x10', ' 5', '-1', '', '5.5', '05'].map((value) => ['OTP_IDLE_TIMEOUT_MS', value]),
    ...['OTP_HANDSHAKE_TIMEOUT_MS', 'OTP_SHUTDOWN_GRACE_MS', 'OTP_WATCHDOG_MS', 'OTP_START_TIMEOUT_MS'].map((name) => [name, '0']),
  ].map(([name, value]) => ({
    what: `${name}='${value}'`,
    args: ['4000'],
    env: { [name]: value },
    says: new RegExp(`${name}=.* is not a whole number of milliseconds from 1 to 2147483647`),
  })),
];

t.test('bad configuration: exit 1 with one line, before listening', async (t) => {
  // A few at a time: each is a Node start-up.
  for (let i = 0; i < cases.length; i += 6) {
    const batch = cases.slice(i, i + 6);
    const results = await Promise.all(batch.map((c) => start(c.args, c.env)));
    batch.forEach((c, j) => {
      const { code, stderr } = results[j];
      t.equal(code, 1, `${c.what}: exit 1`);
      t.match(stderr, /^enc_server: error: [^\n]+\n$/, `${c.what}: one line`);
      t.match(stderr, c.says, `${c.what}: ${stderr.trim()}`);
    });
  }
});

t.test('a port in use: exit 1, one line', async (t) => {
  const other = createServer().listen(0, '127.0.0.1');
  await once(other, 'listening');
  t.teardown(() => other.close());
  const { port } = other.address() as { port: number };
  const { code, stderr } = await start([String(port)]);
  t.equal(code, 1, 'exit 1');
  t.equal(stderr, `enc_server: error: cannot listen on 127.0.0.1:${port}: the port is in use\n`, 'one line, in our words');
});
