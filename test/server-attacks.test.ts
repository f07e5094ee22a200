// Cheap attacks on a server with small caps, and a real client served while each goes on:
// 100 connections that send 15 bytes and hold, 100 that drip a byte at a time, 1000 that
// say nothing, jobs that pay just above the old minimum rate in every job slot (staying, or
// reconnecting the moment they are shed). The
// timeouts are set to a minute, so that whatever serves the real client is the eviction
// rule, not a timeout. Then BUSY beyond the caps, and the slow producer who keeps working
// while there is room and is shed first when there is none.
import t, { type Test } from 'tap';
import { ErrorCode, FrameType, Role, type Frame } from '../src/protocol/frames.js';
import { IDLE_SHED_MS, REAL_CLIENT_RATE, SHED_GRACE_MS } from '../src/protocol/capacity.js';
import { startServer, type Server } from './helpers/programs.js';
import { errorCode, exchange, fdCount, frame, hello, jobFiles, linesFor, model, randomSymbols, rawRoundTrip, RawConnection, runWithin, childrenOf, waitUntil } from './helpers/wire.js';

const { TEXT, KEY, END, RESULT, DONE, ERROR } = FrameType;
/** No timeout may serve the real client here: only the eviction rule. */
const LONG = { OTP_HANDSHAKE_TIMEOUT_MS: '60000', OTP_IDLE_TIMEOUT_MS: '60000' };
/** Attackers are sheddable once idle for IDLE_SHED_MS as the worker's sweep (every 200 ms at most) sees it. */
const SHEDDABLE_MS = IDLE_SHED_MS + 750;

t.jobs = 1;

async function attackers(t: Test, server: Server, count: number, opening: Buffer): Promise<RawConnection[]> {
  const list: RawConnection[] = [];
  t.teardown(() => list.forEach((c) => c.destroy()));
  for (let i = 0; i < count; i++) {
    const c = new RawConnection(server.port);
    list.push(c);
    c.socket.setNoDelay(true);
    if (opening.length > 0) void c.connected.then(() => c.socket.write(opening));
  }
  await Promise.all(list.map((c) => c.connected));
  return list;
}

/** The answers the attackers got: how many were shed or refused with BUSY, and whether any got anything else. */
async function answers(list: RawConnection[]): Promise<{ busy: number; other: number[] }> {
  let busy = 0;
  const other: number[] = [];
  for (const c of list) {
    const { frames } = await c.frames();
    const last = frames.at(-1);
    if (!last) continue;
    if (last.type === ERROR && last.payload[0] === ErrorCode.BUSY) busy++;
    else other.push(last.type === ERROR ? last.payload[0] : -last.type);
  }
  return { busy, other };
}

async function realClient(t: Test, server: Server, what: string): Promise<void> {
  const files = jobFiles(t, 300);
  const result = await runWithin('enc_client', [files.text, files.key, String(server.port)], 20_000);
  t.equal(result.code, 0, `${what}: a real enc_client exits 0 (${result.ms} ms, the timeouts being 60 s)`);
  t.equal(result.stdout.toString(), files.expected, `${what}: with the right ciphertext`);
}

const SMALL_CAPS = ['--workers', '1', '--jobs', '16', '--connections', '64'];

t.test('send once, then hold: 100 connections; a real client is served', async (t) => {
  const server = await startServer('enc_server', SMALL_CAPS, LONG);
  t.teardown(() => server.stop());
  // 15 bytes: a HELLO and a TEXT frame that promises 100 bytes and brings 3.
  const opening = Buffer.concat([hello(), frame(TEXT, 'ABC', 100)]);
  t.equal(opening.length, 15);
  const list = await attackers(t, server, 100, opening);
  await new Promise((r) => setTimeout(r, SHEDDABLE_MS));
  await realClient(t, server, 'send once and hold');
  const { busy, other } = await answers(list);
  t.same(other, [], 'no attacker got anything but BUSY (no TIMEOUT: no timer made the room)');
  t.ok(busy >= 100 - 64, `at least the 36 over the connection cap were shed or refused with BUSY (${busy})`);
  t.ok(server.stderr().split('\n').filter(Boolean).length <= 6, `the log sums the burst up in a few lines:\n${server.stderr()}`);
});

t.test('send once, then hold, with more job slots than connections: the real client takes the place of an idle job', async (t) => {
  // Every connection held is an idle job: nothing answered, no handshake, to shed instead.
  const server = await startServer('enc_server', ['--workers', '1', '--jobs', '100', '--connections', '40'], LONG);
  t.teardown(() => server.stop());
  const list = await attackers(t, server, 40, Buffer.concat([hello(), frame(TEXT, 'ABC', 100)]));
  await new Promise((r) => setTimeout(r, SHEDDABLE_MS));
  await realClient(t, server, 'idle jobs everywhere');
  const { busy, other } = await answers(list);
  t.same(other, [], 'no attacker got anything but BUSY');
  t.ok(busy >= 1, `the idlest attacker(s) were shed (${busy})`);
});

t.test('idle jobs shed for newcomers are summed up in one log line per burst, not a line each', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1', '--jobs', '4', '--connections', '64'], LONG);
  t.teardown(() => server.stop());
  const opening = Buffer.concat([hello(), frame(TEXT, 'ABC', 100)]);
  const idle = await attackers(t, server, 4, opening);
  await new Promise((r) => setTimeout(r, SHEDDABLE_MS));
  // Four more of the same: each finds the slots taken, and sheds one of the idle four.
  const newcomers = await attackers(t, server, 4, opening);
  await waitUntil(() => idle.every((c) => c.socket.destroyed || c.socket.readableEnded), 10_000, 'the four idle jobs to be shed');
  const { busy } = await answers(idle);
  t.equal(busy, 4, 'each idle job was shed with BUSY');
  // Its job ends, and would be logged, when the connection closes: closed here, not after the linger.
  idle.forEach((c) => c.destroy());
  await new Promise((r) => setTimeout(r, 1000));
  await waitUntil(() => /shed 4 connection\(s\)/.test(server.stderr()), 5_000, 'the burst line').catch(() => {});
  t.match(server.stderr(), /worker \d+: shed 4 connection\(s\) making the least progress in \d+ ms, to make room/, 'one line counts them');
  t.same(
    idle.filter((c) => linesFor(server.stderr(), c.localPort).length > 0).map((c) => linesFor(server.stderr(), c.localPort)),
    [],
    'and none of them has a line of its own',
  );
  t.equal(newcomers.filter((c) => c.socket.destroyed).length, 0, 'the newcomers hold their slots');
});

t.test('a burst still being counted when the worker leaves is logged before it goes', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1', '--connections', '1'], LONG);
  t.teardown(() => server.stop());
  // The worker is accepting: startServer's probe, which may have waited in the backlog
  // until then, is gone, and its burst line written if it was shed.
  await rawRoundTrip(server.port);
  await new Promise((r) => setTimeout(r, 2_000));
  const before = server.stderr().length;
  const first = new RawConnection(server.port);
  t.teardown(() => first.destroy());
  await first.connected;
  await new Promise((r) => setTimeout(r, 100));
  // The second takes the first's place, then goes: the worker holds nothing when it is stopped.
  const second = new RawConnection(server.port);
  await second.connected;
  await waitUntil(() => first.socket.readableEnded, 10_000, 'the first to be shed');
  second.destroy();
  await new Promise((r) => setTimeout(r, 100));
  await server.stop();
  t.match(server.stderr().slice(before), /^enc_server: worker \d+: shed 1 connection\(s\) making the least progress in \d+ ms, to make room\n$/, 'the shed one is counted in the log');
});

t.test('a connection already answered, closed to make room, is not counted as shed: it lost nothing', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1', '--connections', '1'], LONG);
  t.teardown(() => server.stop());
  await rawRoundTrip(server.port);
  await new Promise((r) => setTimeout(r, 2_000));
  const before = server.stderr().length;
  // Refused (a dec_client's HELLO), and lingering: it does not close.
  const refused = new RawConnection(server.port);
  t.teardown(() => refused.destroy());
  await refused.connected;
  refused.socket.write(hello(Role.DECRYPT));
  await waitUntil(() => refused.socket.readableEnded, 10_000, 'the refusal');
  const next = new RawConnection(server.port);
  t.teardown(() => next.destroy());
  await next.connected;
  // The refused one is closed as the next comes (a socket half-closed both ways, it does not
  // learn of it until it writes); a burst line would be written after a quiet second.
  await new Promise((r) => setTimeout(r, 1_500));
  const lines = server.stderr().slice(before).split('\n').filter(Boolean);
  t.same(lines.map((line) => line.replace(/^enc_server: 127\.0\.0\.1:\d+: /, '')), ['rejected: a dec_client is not served here'], 'its refusal is its only line');
});

t.test('slow drip: 100 connections sending a byte every 250 ms; a real client is served', async (t) => {
  const server = await startServer('enc_server', SMALL_CAPS, LONG);
  t.teardown(() => server.stop());
  const list = await attackers(t, server, 100, Buffer.concat([hello(), frame(TEXT, '', 1000)]));
  const drip = setInterval(() => list.forEach((c) => !c.socket.destroyed && c.socket.writable && c.socket.write('A')), 250);
  t.teardown(() => clearInterval(drip));
  await new Promise((r) => setTimeout(r, SHEDDABLE_MS));
  await realClient(t, server, 'slow drip');
  clearInterval(drip);
  const { other } = await answers(list);
  t.same(other, [], 'no attacker got anything but BUSY');
});

/**
 * Paying drips of issue 20 (200 symbols of text and key with their HELLO, and every 250 ms
 * after), each opened again `reopenAfterMs` after the server closes it, against a worker of
 * 4 job slots; beside them a fast job (some 25 MiB/s each way) and, with `slowLink`, a
 * client on a 300 kbit/s uplink (below REAL_CLIENT_RATE), both for as long as 10 real
 * 1 MB jobs run one after another.
 */
async function dripsAndRealJobs(t: Test, options: { drips: number; reopenAfterMs: number; slowLink: boolean }): Promise<void> {
  const server = await startServer('enc_server', ['--workers', '1', '--jobs', '4', '--connections', '64'], LONG);
  t.teardown(() => server.stop());
  const text = randomSymbols(200);
  const payment = Buffer.concat([frame(TEXT, text), frame(KEY, text)]);
  let stopped = false;
  let closedByServer = 0;
  const drips = new Set<RawConnection>();
  const drip = (): void => {
    if (stopped) return;
    const c = new RawConnection(server.port);
    drips.add(c);
    c.socket.setNoDelay(true);
    void c.connected.then(() => c.socket.write(Buffer.concat([hello(), payment])));
    const timer = setInterval(() => c.socket.writable && c.socket.write(payment), 250);
    void Promise.race([c.ended, c.closed]).then(() => {
      clearInterval(timer);
      if (!stopped) closedByServer++;
      c.destroy();
      drips.delete(c);
      setTimeout(drip, options.reopenAfterMs);
    });
  };
  const stop = (): void => {
    stopped = true;
    drips.forEach((c) => c.destroy());
  };
  t.teardown(stop);
  for (let i = 0; i < options.drips; i++) drip();
  // The drips in the slots have paid a while, and are idle for none of it.
  await new Promise((r) => setTimeout(r, SHEDDABLE_MS));

  /** A job streamed at `bytesPerSecond` of text and key (half each), sent as its time comes, until finish(). */
  const streamed = async (bytesPerSecond: number, tick: number): Promise<{ finish: () => Promise<{ sent: number; frames: Frame[] }> }> => {
    const c = new RawConnection(server.port);
    t.teardown(() => c.destroy());
    await c.connected;
    c.socket.setNoDelay(true);
    c.socket.write(hello());
    const began = Date.now();
    let sent = 0;
    const send = (): void => {
      if (c.socket.writableLength > 0) return;
      const n = Math.min(256 << 10, Math.floor(((Date.now() - began + tick) * bytesPerSecond) / 2000) - sent);
      if (n <= 0) return;
      const chunk = randomSymbols(n);
      c.socket.write(Buffer.concat([frame(TEXT, chunk), frame(KEY, chunk)]));
      sent += n;
    };
    send();
    const timer = setInterval(send, tick);
    t.teardown(() => clearInterval(timer));
    return {
      finish: async () => {
        clearInterval(timer);
        c.socket.end(frame(END));
        await waitUntil(() => c.socket.readableEnded, 20_000, 'a streamed job to end');
        return { sent, frames: (await c.frames()).frames };
      },
    };
  };
  const fast = await streamed(25 << 20, 20);
  // 300 kbit/s of text and key up, half that of result down: some 56 KB/s, below the rate,
  // so that only its rank keeps it, above the drips'.
  const slowLinkRate = 300_000 / 8;
  t.ok(slowLinkRate * 1.5 < REAL_CLIENT_RATE, 'the slow link moves less than REAL_CLIENT_RATE');
  const slowLink = options.slowLink ? await streamed(slowLinkRate, 50) : null;

  const files = jobFiles(t, 1_000_000);
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const result = await runWithin('enc_client', [files.text, files.key, String(server.port)], 20_000);
    times.push(result.ms);
    t.equal(result.code, 0, `real 1 MB job ${i + 1}: exit 0 (${result.ms} ms)`, { stderr: result.stderr });
    t.equal(result.stdout.toString() === files.expected, true, `real 1 MB job ${i + 1}: the right ciphertext`);
  }
  t.comment(`real 1 MB jobs among the drips: ${times.join(' ')} ms`);
  stop();
  t.ok(closedByServer > 0, `drips were shed to make the room (${closedByServer} closed by the server)`);
  for (const [what, job] of [['the fast job', fast], ['the slow link', slowLink]] as const) {
    if (!job) continue;
    const { sent, frames } = await job.finish();
    t.equal(frames.at(-1)?.type, DONE, `${what} was never shed: it ends with DONE`);
    t.equal(frames.filter((f) => f.type === RESULT).reduce((n, f) => n + f.payload.length, 0), sent, `${what}: with every symbol it was sent`);
  }
}

t.test('paying drips in every job slot (200 symbols every 250 ms, above the old minimum rate), reopened a second after they are shed; real 1 MB jobs are served, a fast job is never shed', async (t) => {
  await dripsAndRealJobs(t, { drips: 4, reopenAfterMs: 1000, slowLink: false });
});

t.test('paying drips, three times as many as the job slots, each reopened the moment it is told BUSY: real 1 MB jobs are served, a fast job and a slow link are never shed', async (t) => {
  await dripsAndRealJobs(t, { drips: 12, reopenAfterMs: 0, slowLink: true });
});

t.test('1000 silent connections; a real client is served, and the worker holds no more than its cap', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1', '--connections', '256'], LONG);
  t.teardown(() => server.stop());
  const [worker] = childrenOf(server.child.pid!);
  const base = fdCount(worker);
  const list = await attackers(t, server, 1000, Buffer.alloc(0));
  await realClient(t, server, '1000 silent');
  const held = fdCount(worker) - base;
  t.ok(held <= 256 + 2, `the worker holds ${held} connections: its cap, 256 (and what is closing)`);
  const { busy, other } = await answers(list);
  t.same(other, [], 'the silent ones shed got BUSY and nothing else');
  t.ok(busy >= 1000 - 256, `${busy} of them were shed`);
});

t.test('out of descriptors (ulimit -n 128): 400 silent connections get a place or BUSY, never a silent close; a real client is served; a log line or two, not hundreds', async (t) => {
  const limit = 128;
  const server = await startServer('enc_server', ['--workers', '1'], LONG, { under: ['prlimit', `--nofile=${limit}:${limit}`, '--'] });
  t.teardown(() => server.stop());
  const list = await attackers(t, server, 400, Buffer.alloc(0));
  await realClient(t, server, 'out of descriptors');
  // Whatever was closed has had its frame by now: BUSY goes out before the close.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const closed = list.filter((c) => c.socket.destroyed || c.socket.readableEnded);
  const silent = closed.filter((c) => c.bytes().length === 0).length;
  t.ok(closed.length >= 400 - limit, `${closed.length} of the 400 were turned away: more than the descriptors allow could be held`);
  t.equal(silent, 0, 'every connection turned away was told BUSY first: none closed without a frame');
  const lines = server.stderr().split('\n').filter(Boolean).length;
  t.ok(lines <= 5, `${lines} log lines for the flood (one per burst, with a count)`);
});

t.test('BUSY beyond the caps: a worker running its most jobs, all fast and young, refuses the next', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1', '--jobs', '2', '--connections', '8'], LONG);
  t.teardown(() => server.stop());
  const busyJobs = await attackers(t, server, 2, hello());
  const chunk = randomSymbols(16384);
  const stream = setInterval(() => busyJobs.forEach((c) => c.socket.write(Buffer.concat([frame(TEXT, chunk), frame(KEY, chunk)]))), 20);
  t.teardown(() => clearInterval(stream));
  await waitUntil(async () => (await Promise.all(busyJobs.map((c) => c.frames()))).every((f) => f.frames.some((x) => x.type === RESULT)), 10_000, 'both jobs to run');
  // Not whole in its first read (no END yet): it needs a job slot.
  const reply = await exchange(server.port, [hello(), frame(TEXT, 'AB'), frame(KEY, 'AB')]);
  t.same(reply.frames.map((f) => f.type), [ERROR], 'a third job gets one ERROR frame');
  t.equal(errorCode(reply), ErrorCode.BUSY, 'code BUSY');
  t.equal(reply.frames[0]?.payload.subarray(1).toString(), 'server busy', "message 'server busy'");
  t.ok(reply.endedByServer, 'and a FIN, not a silent close');
  const files = jobFiles(t, 300_000);
  const client = await runWithin('enc_client', [files.text, files.key, String(server.port)], 20_000);
  t.equal(client.code, 2, 'enc_client exits 2');
  t.match(client.stderr, /^enc_client: error: [^\n]*server busy[^\n]*\n$/, 'saying, in one line, that the server is busy');
  t.equal(client.stdout.length, 0, 'with nothing on stdout');
  clearInterval(stream);
  for (const c of busyJobs) c.socket.end(frame(END));
  for (const c of busyJobs) await c.ended;
  const ends = await Promise.all(busyJobs.map((c) => c.frames()));
  t.same(ends.map((f) => f.frames.at(-1)?.type), [DONE, DONE], 'the two running jobs were never disturbed');
});

t.test('a job just begun keeps its slot with the bytes to show for it (its first read counted), and is shed for a newcomer without them', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1', '--jobs', '1', '--connections', '8'], LONG);
  t.teardown(() => server.stop());
  const entry = (REAL_CLIENT_RATE * SHED_GRACE_MS) / 1000;
  /** A job that sends `symbols` of text and key in the write that carries its HELLO (no END: it needs a job slot), and waits for its result. */
  const begun = async (symbols: number): Promise<{ c: RawConnection; text: string; key: string; answer: Frame[] }> => {
    const text = randomSymbols(symbols);
    const key = randomSymbols(symbols);
    const c = new RawConnection(server.port);
    t.teardown(() => c.destroy());
    await c.connected;
    c.socket.write(Buffer.concat([hello(), frame(TEXT, text), frame(KEY, key)]));
    let answer: Frame[] = [];
    await waitUntil(async () => (answer = (await c.frames()).frames).some((f) => f.type === RESULT || f.type === ERROR), 10_000, 'its first answer');
    return { c, text, key, answer };
  };
  /** The server's FIN, or the deadline: a job the rule keeps by mistake would otherwise run until the idle timeout. */
  const endOf = (c: RawConnection, what: string): Promise<void> => waitUntil(() => c.socket.readableEnded, 10_000, what).catch(() => {});
  const ends = async (job: { c: RawConnection; text: string; key: string }, what: string): Promise<void> => {
    job.c.socket.end(frame(END));
    await endOf(job.c, `${what} to end`);
    const frames = (await job.c.frames()).frames;
    t.equal(frames.at(-1)?.type, DONE, `${what} ends with DONE`);
    t.equal(Buffer.concat(frames.filter((f) => f.type === RESULT).map((f) => f.payload)).toString(), model('encrypt', job.text, job.key), `${what}: correctly`);
  };

  // 16,000 symbols of text and key in, and their result out, in the job's first moment: 48 KB,
  // well past the 16 KiB asked, though its result alone (16 KB) is short of it.
  t.ok(16_000 < entry && 3 * 16_000 > entry, 'the result alone is short of the entry, the whole job well past it');
  const paid = await begun(16_000);
  const turnedAway = await begun(2);
  t.same(turnedAway.answer.map((f) => [f.type, f.payload[0]]), [[ERROR, ErrorCode.BUSY]], 'a newcomer is told BUSY: the young job that paid keeps its slot');
  await ends(paid, 'the job that paid');

  // 2,000 symbols each way, 6 KB in all: short of the entry, however young the job.
  const unpaid = await begun(2_000);
  const newcomer = await begun(2);
  t.equal(newcomer.answer[0]?.type, RESULT, 'a newcomer takes the slot of a young job that has not paid');
  await ends(newcomer, 'the newcomer');
  await endOf(unpaid.c, 'the young job that has not paid to be shed');
  const shed = (await unpaid.c.frames()).frames;
  t.same(shed.map((f) => f.type), [RESULT, ERROR], 'which is shed, behind its result');
  t.equal(shed.at(-1)?.payload[0], ErrorCode.BUSY, 'with BUSY');
});

t.test('a slow producer keeps working while there is room, and is the first shed when there is none', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1', '--jobs', '1'], LONG);
  t.teardown(() => server.stop());
  const text = 'SLOW BUT HONEST';
  const key = randomSymbols(text.length);
  const slow = new RawConnection(server.port);
  t.teardown(() => slow.destroy());
  await slow.connected;
  slow.socket.setNoDelay(true);
  slow.socket.write(hello());
  for (let i = 0; i < text.length; i++) {
    slow.socket.write(Buffer.concat([frame(TEXT, text[i]), frame(KEY, key[i])]));
    await new Promise((r) => setTimeout(r, 100));
  }
  slow.socket.end(frame(END));
  await slow.ended;
  const { frames } = await slow.frames();
  t.equal(frames.at(-1)?.type, DONE, `with room, a producer of 10 bytes a second is served to the end (${text.length} symbols over ${text.length * 100} ms)`);
  t.equal(Buffer.concat(frames.filter((f) => f.type === RESULT).map((f) => f.payload)).toString(), model('encrypt', text, key), 'correctly');

  const dripper = new RawConnection(server.port);
  t.teardown(() => dripper.destroy());
  await dripper.connected;
  dripper.socket.write(hello());
  const drip = setInterval(() => dripper.socket.writable && dripper.socket.write(Buffer.concat([frame(TEXT, 'A'), frame(KEY, 'B')])), 100);
  t.teardown(() => clearInterval(drip));
  await new Promise((r) => setTimeout(r, SHED_GRACE_MS + 500));
  const files = jobFiles(t, 300_000);
  const next = await runWithin('enc_client', [files.text, files.key, String(server.port)], 20_000);
  t.equal(next.code, 0, 'with the only job slot taken by the slow producer, a new client is served');
  t.equal(next.stdout.toString(), files.expected, 'correctly');
  await dripper.ended;
  clearInterval(drip);
  const shed = await dripper.frames();
  t.equal(shed.frames.at(-1)?.type, ERROR, 'the slow producer was shed');
  t.equal(shed.frames.at(-1)?.payload[0], ErrorCode.BUSY, 'with BUSY');
  t.ok(shed.frames.slice(0, -1).every((f) => f.type === RESULT), 'behind the results it had been sent');
});
