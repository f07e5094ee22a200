// contrib/haproxy/otp.cfg for real: HAProxy on loopback in front of two enc_servers and two dec_servers (--proxy-protocol),
// 50 concurrent round trips through it (and real clients), both backends used, the clients' own ports in the servers' logs, a backend killed.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freePort, ROOT, run, startServer, waitForPort, type Server } from './helpers/programs.js';
import { FrameType, Role } from '../src/protocol/frames.js';
import { childrenOf, exchange, job, model, randomSymbols, resultText, tempDir, waitUntil } from './helpers/wire.js';

/** HAProxy's path, installing it from the Debian packages when it is missing and we may; null when we cannot. */
function haproxy(): string | null {
  const find = (): string | null => ['/usr/sbin/haproxy', '/usr/bin/haproxy', '/usr/local/sbin/haproxy'].find((path) => existsSync(path)) ?? null;
  if (find()) return find();
  if (process.getuid?.() !== 0) return null;
  try {
    execFileSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq haproxy'], { stdio: 'ignore', timeout: 300_000 });
  } catch {
    return null;
  }
  return find();
}

const HAPROXY = haproxy();

t.test('HAProxy in front of two enc_servers and two dec_servers', { skip: HAPROXY ? false : 'HAProxy is not installed and cannot be (apt-get install haproxy needs root and the Debian mirror)' }, async (t) => {
  const dir = tempDir(t);
  const servers: Record<string, Server> = {};
  const ports: Record<string, number> = {};
  for (const name of ['enc1', 'enc2', 'dec1', 'dec2']) {
    servers[name] = await startServer(name.startsWith('enc') ? 'enc_server' : 'dec_server', ['--proxy-protocol', '-v', '--workers', '2']);
    ports[name] = servers[name].port;
  }
  t.teardown(() => Promise.all(Object.values(servers).map((s) => s.stop('SIGKILL'))));
  const front = { enc: await freePort(), dec: await freePort() };

  // The configuration as shipped, with the ports of this run and loopback only.
  const config = readFileSync(join(ROOT, 'contrib', 'haproxy', 'otp.cfg'), 'utf8')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace('bind :57171', `bind 127.0.0.1:${front.enc}`)
    .replace('bind :57181', `bind 127.0.0.1:${front.dec}`)
    .replace(':57172', `:${ports.enc1}`)
    .replace(':57173', `:${ports.enc2}`)
    .replace(':57182', `:${ports.dec1}`)
    .replace(':57183', `:${ports.dec2}`);
  t.notMatch(config, /5717\d|5718\d/, 'every port of the shipped file was replaced');
  const file = join(dir, 'otp.cfg');
  writeFileSync(file, config);
  const proxy = spawn(HAPROXY!, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let proxyLog = '';
  proxy.stderr!.setEncoding('utf8').on('data', (chunk: string) => (proxyLog += chunk));
  const proxyExited = once(proxy, 'exit');
  t.teardown(async () => {
    if (proxy.exitCode === null && proxy.signalCode === null) {
      proxy.kill('SIGTERM');
      await proxyExited;
    }
  });
  await Promise.all([waitForPort(front.enc, 30_000), waitForPort(front.dec, 30_000)]).catch((err) => {
    throw new Error(`${(err as Error).message}; haproxy said: ${proxyLog}`);
  });

  await t.test('50 concurrent round trips through it, all correct, on both backends', async (t) => {
    // Raw protocol clients in this process, so that the 50 are truly at once on a loaded machine; then real programs.
    const trips = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const text = randomSymbols(2000 + 37 * i);
        const key = randomSymbols(text.length);
        const there = await exchange(front.enc, job(text, key, Role.ENCRYPT));
        const back = await exchange(front.dec, job(resultText(there), key, Role.DECRYPT));
        return there.frames.at(-1)?.type === FrameType.DONE && resultText(there) === model('encrypt', text, key) && resultText(back) === text;
      }),
    );
    t.equal(trips.filter(Boolean).length, 50, 'all 50 round trips came back as they went in, through HAProxy both ways');

    const programs = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const text = randomSymbols(5000 + i);
        writeFileSync(join(dir, `plain${i}`), `${text}\n`);
        writeFileSync(join(dir, `key${i}`), `${randomSymbols(text.length)}\n`);
        const there = await run('enc_client', [join(dir, `plain${i}`), join(dir, `key${i}`), String(front.enc)]);
        writeFileSync(join(dir, `cipher${i}`), there.stdout);
        const back = await run('dec_client', [join(dir, `cipher${i}`), join(dir, `key${i}`), String(front.dec)]);
        return there.code === 0 && back.code === 0 && back.stdout.toString('latin1') === `${text}\n`;
      }),
    );
    t.equal(programs.filter(Boolean).length, 6, 'and six round trips of enc_client and dec_client through it');

    const jobs = (name: string): number => (servers[name].stderr().match(/: (enc|dec)_client, \d+ bytes in, .* ok$/gm) ?? []).length;
    await waitUntil(() => jobs('enc1') + jobs('enc2') === 56 && jobs('dec1') + jobs('dec2') === 56, 5000, 'every job logged');
    for (const name of ['enc1', 'enc2', 'dec1', 'dec2']) t.ok(jobs(name) > 0, `${name} served some of them (${jobs(name)})`);
  });

  await t.test("the servers' logs name the clients' own ports (from the PROXY header), not HAProxy's", async (t) => {
    const replies = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const text = randomSymbols(100);
        const key = randomSymbols(100);
        const reply = await exchange(front.enc, job(text, key));
        return { reply, ok: resultText(reply) === model('encrypt', text, key) && reply.frames.at(-1)?.type === FrameType.DONE };
      }),
    );
    t.ok(replies.every((r) => r.ok), 'ten raw jobs through HAProxy, all correct');
    const logs = (): string => servers.enc1.stderr() + servers.enc2.stderr();
    for (const { reply } of replies) {
      await waitUntil(() => logs().includes(`127.0.0.1:${reply.localPort}: enc_client`), 5000, `a log line names 127.0.0.1:${reply.localPort}`);
    }
    t.pass('every client port is in a log line');
  });

  await t.test('with one backend killed, new jobs still succeed', async (t) => {
    const enc1 = servers.enc1;
    const workers = childrenOf(enc1.child.pid!);
    await enc1.stop('SIGKILL');
    for (const pid of workers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone with its parent
      }
    }
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => run('enc_client', [join(dir, `plain${i}`), join(dir, `key${i}`), String(front.enc)])));
    results.forEach((result, i) => t.equal(result.code, 0, `job ${i} after enc1 died: exit 0`, { stderr: result.stderr }));
    t.equal(proxy.exitCode, null, 'HAProxy is still up');
  });
  t.comment(`haproxy: ${proxyLog.split('\n').filter((line) => /DOWN|UP/.test(line)).join(' | ') || 'no state changes logged'}`);
});
