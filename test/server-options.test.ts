// The servers' command line end to end: a port in use, --workers out of range, what -v logs, and a HELLO with more than it needs.
import { once } from 'node:events';
import { createServer } from 'node:net';
import t from 'tap';
import { FrameType, Role } from '../src/protocol/frames.js';
import { freePort, run, startServer } from './helpers/programs.js';
import { childrenOf, exchange, frame, frameTypes, hello, linesFor, model, resultText, waitUntil } from './helpers/wire.js';

const SERVERS = ['enc_server', 'dec_server'] as const;

t.test('a port in use: exit 1 and one line saying so', async (t) => {
  const other = createServer();
  other.listen(0, '127.0.0.1');
  await once(other, 'listening');
  t.teardown(() => other.close());
  const port = (other.address() as { port: number }).port;
  for (const name of SERVERS) {
    const r = await run(name, [String(port)]);
    t.equal(r.code, 1, `${name}: exit 1`);
    t.equal(r.stderr, `${name}: error: cannot listen on 127.0.0.1:${port}: the port is in use\n`, `${name}: the exact line`);
    t.equal(r.stdout.length, 0, `${name}: nothing on stdout`);
  }
});

t.test('--workers out of range: exit 1 and one line, before listening', async (t) => {
  const port = await freePort();
  const cases = SERVERS.flatMap((name) => ['0', '65', '-1', '1.5', 'x', ''].map((value) => ({ name, value })));
  const results = await Promise.all(cases.map(({ name, value }) => run(name, [String(port), `--workers=${value}`])));
  cases.forEach(({ name, value }, i) => {
    t.equal(results[i].code, 1, `${name} --workers=${value}: exit 1`);
    t.equal(results[i].stderr, `${name}: error: --workers '${value}' is not a number from 1 to 64\n`, `${name} --workers=${value}: the exact line`);
  });
});

t.test('--workers N: exactly N workers', async (t) => {
  for (const n of [1, 3]) {
    const server = await startServer('enc_server', ['--workers', String(n)]);
    t.teardown(() => server.stop());
    const pid = server.child.pid!;
    // Let the pool fill; more than N would show too.
    await waitUntil(() => childrenOf(pid).length >= n, 30_000, `${n} workers`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.equal(childrenOf(pid).length, n, `--workers ${n}: ${n} worker${n === 1 ? '' : 's'}`);
  }
});

t.test('-v logs one line per connection; without it, good jobs and port probes log nothing', async (t) => {
  const [quiet, verbose] = await Promise.all([startServer('enc_server'), startServer('enc_server', ['-v'])]);
  t.teardown(() => quiet.stop());
  t.teardown(() => verbose.stop());
  const input = Buffer.concat([hello(), frame(FrameType.TEXT, 'HELLO'), frame(FrameType.KEY, 'WORLD'), frame(FrameType.END)]);
  const ports = new Map<typeof quiet, { job: number; probes: number[] }>();
  for (const server of [quiet, verbose]) {
    await waitUntil(() => childrenOf(server.child.pid!).length === 5, 20_000, 'five workers');
    const reply = await exchange(server.port, input, { timeoutMs: 30_000 });
    t.equal(resultText(reply), model('encrypt', 'HELLO', 'WORLD'), 'the job is served');
    // Port probes: connect and close without a byte.
    const probes = [await exchange(server.port, [], { after: 'destroy' }), await exchange(server.port, [], { after: 'destroy' })];
    ports.set(server, { job: reply.localPort, probes: probes.map((p) => p.localPort) });
  }
  const { job, probes } = ports.get(verbose)!;
  await waitUntil(() => [job, ...probes].every((port) => linesFor(verbose.stderr(), port).length > 0), 5_000, 'the -v lines').catch(() => {});
  t.same(
    linesFor(verbose.stderr(), job),
    [`enc_server: 127.0.0.1:${job}: enc_client, ${input.length} bytes in, 5 symbols out, ${/:\d+: enc_client, \d+ bytes in, 5 symbols out, (\d+) ms/.exec(verbose.stderr())?.[1]} ms, ok`],
    '-v: one line for the job: peer, role, every byte in, symbols out, ok',
  );
  for (const port of probes) {
    t.same(linesFor(verbose.stderr(), port), [`enc_server: 127.0.0.1:${port}: dropped: the connection closed before its HELLO`], '-v: one line for a port probe');
  }
  t.equal(quiet.stderr(), '', 'without -v: nothing at all, for the job or the probes');
});

t.test('a HELLO with more payload than it needs: the rest is ignored, and the log counts every byte', async (t) => {
  const server = await startServer('enc_server', ['-v', '--workers', '1']);
  t.teardown(() => server.stop());
  const job = Buffer.concat([frame(FrameType.TEXT, 'ATTACK AT DAWN'), frame(FrameType.KEY, 'LEMON LEMON LE'), frame(FrameType.END)]);
  const want = model('encrypt', 'ATTACK AT DAWN', 'LEMON LEMON LE');
  const cases = [
    { what: '3 extra bytes, all in one write', chunks: [Buffer.concat([frame(FrameType.HELLO, Buffer.from([1, Role.ENCRYPT, 0xaa, 0xbb, 0xcc])), job])] },
    { what: 'the largest HELLO (1024 bytes), then the job in a second write', chunks: [frame(FrameType.HELLO, Buffer.concat([Buffer.from([1, Role.ENCRYPT]), Buffer.alloc(1022, 0xee)])), job] },
    { what: 'extra bytes that look like frames', chunks: [frame(FrameType.HELLO, Buffer.concat([Buffer.from([1, Role.ENCRYPT]), frame(FrameType.END)])), job] },
  ];
  for (const c of cases) {
    const before = server.stderr().length;
    const reply = await exchange(server.port, c.chunks);
    t.same(frameTypes(reply).slice(-1), [FrameType.DONE], `${c.what}: DONE`);
    t.equal(resultText(reply), want, `${c.what}: the right result`);
    const sent = c.chunks.reduce((n, chunk) => n + chunk.length, 0);
    await waitUntil(() => linesFor(server.stderr().slice(before), reply.localPort).length > 0, 5_000, 'the log line').catch(() => {});
    const [logged] = linesFor(server.stderr().slice(before), reply.localPort);
    t.match(logged ?? '', new RegExp(`: enc_client, ${sent} bytes in, 14 symbols out, \\d+ ms, ok$`), `${c.what}: the log counts all ${sent} bytes`);
  }
});
