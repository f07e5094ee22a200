// The server's pure pieces, without processes: log escaping and peer names, the eviction
// rule, the whole-job answer against the mod-27 model, strict timeouts and numbers.
import fc from 'fast-check';
import t from 'tap';
import { parseCount, parsePort } from '../src/cli/command-line.js';
import { cipherTable } from '../src/cipher/alphabet.js';
import { FrameType } from '../src/protocol/frames.js';
import { DEFAULT_TIMEOUTS } from '../src/protocol/timeouts.js';
import { IDLE_SHED_MS, RATE_WINDOW_MS, REAL_CLIENT_RATE, SHED_GRACE_MS } from '../src/protocol/capacity.js';
import { readTimeouts } from '../src/cli/environment.js';
import { effectiveCaps, openFileLimit, pickVictim, RateWindow, type Standing } from '../src/server/limits.js';
import { escapeText, formatPeer } from '../src/server/log.js';
import { answerWholeJob } from '../src/server/whole-job.js';
import { ABC, frame, model } from './helpers/wire.js';

/** The inverse of escapeText, written independently: \\, \n, \r, \t, \xNN, \u{N}. */
function unescape(text: string): string {
  return text.replace(/\\(\\|n|r|t|x([0-9a-f]{2})|u\{([0-9a-f]+)\})/g, (_, c: string, x?: string, u?: string) =>
    x ? String.fromCodePoint(parseInt(x, 16)) : u ? String.fromCodePoint(parseInt(u, 16)) : ({ '\\': '\\', n: '\n', r: '\r', t: '\t' } as Record<string, string>)[c],
  );
}

t.test('escapeText: every code point alone comes out printable, on one line, and can be read back', async (t) => {
  let bad = 0;
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue; // lone surrogates: tested below
    const c = String.fromCodePoint(cp);
    const out = escapeText(c);
    if (/[\p{C}\p{Zl}\p{Zp}]/u.test(out) || unescape(out) !== c) bad++;
  }
  t.equal(bad, 0, 'all 1,112,064 scalar values');
  t.equal(escapeText('\ud800'), '\\u{d800}', 'a lone surrogate is escaped');
  t.equal(escapeText('a\nenc_server: worker 4242 was killed\x1b[31m\\x41'), 'a\\nenc_server: worker 4242 was killed\\x1b[31m\\\\x41', 'a forged line and a forged escape');
  fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => !/[\p{C}\p{Zl}\p{Zp}]/u.test(escapeText(s)) && unescape(escapeText(s)) === s));
});

t.test('formatPeer: IPv4 as is, IPv6 in brackets, nothing for a socket already gone', async (t) => {
  t.equal(formatPeer('127.0.0.1', 5000), '127.0.0.1:5000');
  t.equal(formatPeer('::1', 5000), '[::1]:5000');
  t.equal(formatPeer('::ffff:127.0.0.1', 80), '[::ffff:127.0.0.1]:80');
  t.equal(formatPeer(undefined, undefined), null);
  t.equal(formatPeer('127.0.0.1', undefined), null);
});

/** A Standing for the eviction rule's tests: `bytes` moved either way since `windowStart`. */
type Named = Standing & { name: string };
const standing = (name: string, stage: Standing['stage'], since: number, lastProgressAt: number, windowStart = since, windowBytes = 0): Named => ({
  name,
  stage,
  since,
  lastProgressAt,
  windowStart,
  windowBytes,
});
/** The rule as PROTOCOL.md writes it, apart from limits.ts: bytes a second over the span, a span under the grace counted as the grace. */
const ruleRate = (c: Standing, now: number): number => (c.windowBytes * 1000) / Math.max(now - c.windowStart, SHED_GRACE_MS);

t.test('pickVictim: answered, then handshakes, then idle jobs, then the slowest job below REAL_CLIENT_RATE', async (t) => {
  const now = 100_000;
  const old = now - 3_000;
  /** A job that began at `old` and has moved `rate` bytes a second since. */
  const job = (name: string, rate: number): Named => standing(name, 'job', old, now, old, (rate * (now - old)) / 1000);
  const fast = job('fast', REAL_CLIENT_RATE * 10);
  const slow = job('slow', REAL_CLIENT_RATE / 2);
  const slower = job('slower', REAL_CLIENT_RATE / 4);
  const idle = standing('idle', 'job', old, now - IDLE_SHED_MS);
  const idler = standing('idler', 'job', old - 10, now - IDLE_SHED_MS - 10);
  const shake = standing('handshake', 'handshake', now - 50, now - 50);
  const older = standing('older handshake', 'handshake', now - 10, now - 60);
  const answered = standing('answered', 'answered', now - 5, now);
  const all = [fast, slow, slower, idle, idler, shake, older, answered];
  const pick = (list: Named[], forJob: boolean): string | undefined => pickVictim(list, now, forJob)?.name;
  t.equal(pick(all, false), 'answered', 'an answered connection first');
  t.equal(pick(all.filter((x) => x !== answered), false), 'older handshake', 'then the handshake whose last progress is oldest');
  t.equal(pick(all.filter((x) => x.stage === 'job'), false), 'idler', 'then the job idle longest');
  t.equal(pick(all, true), 'idler', 'a job slot: never a handshake or an answered one; the idlest job');
  t.equal(pick([fast, slow, slower], true), 'slower', 'then the slowest below REAL_CLIENT_RATE');
  t.equal(pick([fast], true), undefined, 'none: a fast job is kept');
  t.equal(pick([job('at the rate', REAL_CLIENT_RATE)], true), undefined, 'a job at exactly REAL_CLIENT_RATE is kept');
  t.equal(pick([job('just below', REAL_CLIENT_RATE - 1)], true), 'just below', 'one byte a second less is not');
  // 200 symbols of text and key every 250 ms: some 1.6 KiB/s in, 0.8 KiB/s out.
  const drip = job('drip', 2400);
  const loopback = standing('loopback', 'job', old - 60_000, now, now - 7_000, 7 * (100 << 20));
  const wan = job('a client on a 1 Mbit/s uplink', 190_000);
  t.equal(pick([loopback, wan, drip], true), 'drip', 'a drip paying above the old 1 KiB/s is shed under contention');
  t.equal(pick([loopback, wan], true), undefined, 'a job at loopback speed is never shed, nor one on a slow real network');
  t.ok(REAL_CLIENT_RATE <= (350_000 / 8) * 1.5, 'a client whose uplink carries 350 kbit/s of text and key reaches the rate');
});

t.test('pickVictim: a young job is weighed as if it had run SHED_GRACE_MS: it keeps its slot only with the bytes to show for it', async (t) => {
  const now = 100_000;
  const pick = (list: Named[]): string | undefined => pickVictim(list, now, true)?.name;
  const entry = (REAL_CLIENT_RATE * SHED_GRACE_MS) / 1000;
  t.equal(entry, 16 << 10, 'the bytes a job needs to be kept from its start: 16 KiB');
  // The drips of issue 20 that reconnect the moment they are told BUSY: a HELLO, 200 symbols of text and key, a few ms ago.
  const newDrip = standing('drip, reconnected 5 ms ago', 'job', now - 5, now - 5, now - 5, 417);
  const firstRead = standing('a real client, its first read 1 ms ago', 'job', now - 1, now - 1, now - 1, 64 << 10);
  const justBegun = standing('a job begun this very ms', 'job', now, now, now, entry);
  t.equal(pick([newDrip, firstRead, justBegun]), 'drip, reconnected 5 ms ago', 'a drip reconnected a moment ago has no time of grace to hide in');
  t.equal(pick([firstRead, justBegun]), undefined, 'a job whose first read brought 16 KiB or more is kept');
  t.equal(pick([standing('short of it', 'job', now, now, now, entry - 1)]), 'short of it', 'one byte short is not');
  t.equal(pick([standing('a clock gone back', 'job', now + 5_000, now, now + 5_000, entry)]), undefined, 'a span below zero (the clock set back) counts as the grace too');
  // A client on a 300 kbit/s uplink: 37.5 KB/s of text and key up, half that of result down, for 4 s: below the rate.
  const slowLink = standing('a client on a 300 kbit/s uplink', 'job', now - 4_000, now, now - 4_000, 4 * 56_250);
  t.ok(ruleRate(slowLink, now) < REAL_CLIENT_RATE, 'the slow link is below REAL_CLIENT_RATE');
  t.equal(pick([slowLink, newDrip]), 'drip, reconnected 5 ms ago', 'yet a drip just connected goes before it: it weighs 417 bytes over 250 ms');
  const stayingDrip = standing('a drip that stayed 4 s', 'job', now - 4_000, now, now - 4_000, 417 + 16 * 615);
  t.equal(pick([slowLink, stayingDrip]), 'a drip that stayed 4 s', 'and so does a drip that stayed');
});

t.test('pickVictim, any set of connections: never a job at REAL_CLIENT_RATE unless idle, the idlest, else the slowest, else null', async (t) => {
  const now = 1_000_000;
  const arbitrary = fc.record({
    stage: fc.constantFrom<Standing['stage']>('answered', 'handshake', 'job'),
    since: fc.integer({ min: now - 20_000, max: now }),
    idleFor: fc.integer({ min: 0, max: 3_000 }),
    // Young jobs, about the grace, as often as older ones; a span below zero is a clock set back.
    span: fc.oneof(fc.integer({ min: -100, max: 2 * SHED_GRACE_MS }), fc.integer({ min: 0, max: 12_000 })),
    // Around the rate, both ways, up to loopback speed.
    rate: fc.oneof(fc.integer({ min: 0, max: 2 * REAL_CLIENT_RATE }), fc.integer({ min: 0, max: 200 << 20 })),
  });
  fc.assert(
    fc.property(fc.array(arbitrary, { maxLength: 24 }), fc.boolean(), (specs, forJob) => {
      const held = specs.map((s, i) =>
        standing(`c${i}`, s.stage, s.since, now - s.idleFor, now - s.span, Math.floor((s.rate * Math.max(s.span, SHED_GRACE_MS)) / 1000)),
      );
      const victim = pickVictim(held, now, forJob);
      const of = (stage: Standing['stage']): Named[] => held.filter((c) => c.stage === stage);
      if (!forJob && of('answered').length > 0) return victim !== null && victim.stage === 'answered' && of('answered').every((c) => c.since >= victim.since);
      if (!forJob && of('handshake').length > 0) return victim !== null && victim.stage === 'handshake' && of('handshake').every((c) => c.lastProgressAt >= victim.lastProgressAt);
      const idle = of('job').filter((c) => now - c.lastProgressAt >= IDLE_SHED_MS);
      if (idle.length > 0) return victim !== null && idle.includes(victim) && idle.every((c) => c.lastProgressAt >= victim.lastProgressAt);
      const slow = of('job').filter((c) => ruleRate(c, now) < REAL_CLIENT_RATE);
      if (slow.length === 0) return victim === null;
      // The slowest; a young one only for want of the bytes the grace asks (its rate taken over SHED_GRACE_MS).
      const young = victim !== null && now - victim.windowStart < SHED_GRACE_MS;
      return (
        victim !== null &&
        slow.includes(victim) &&
        of('job').every((c) => ruleRate(c, now) >= ruleRate(victim, now)) &&
        (!young || victim.windowBytes * 1000 < REAL_CLIENT_RATE * SHED_GRACE_MS)
      );
    }),
    { numRuns: 2_000 },
  );
  t.pass('2000 sets of up to 24 connections');
});

t.test('RateWindow: a job\'s rate is taken over its life, then over the last one to two RATE_WINDOW_MS', async (t) => {
  const window = new RateWindow();
  const began = 50_000;
  // A job moving 1000 bytes a ms, sampled by a sweep every 200 ms.
  const bytesAt = (at: number): number => 7 + (at - began) * 1000;
  window.begin(began, 7);
  const wrong: string[] = [];
  for (let now = began; now <= began + 60_000; now += 200) {
    window.sample(now, bytesAt(now));
    const span = now - window.start;
    if (window.bytesAtStart !== bytesAt(window.start)) wrong.push(`${now}: bytes at the start ${window.bytesAtStart}`);
    if (now - began < 2 * RATE_WINDOW_MS ? window.start !== began : span < RATE_WINDOW_MS || span >= 2 * RATE_WINDOW_MS + 200) wrong.push(`${now}: span ${span}`);
  }
  t.same(wrong, [], 'the job\'s start until it is two windows old, then a span of one to two windows, with its bytes at that start');
});

t.test('effectiveCaps: connections kept below the descriptor limit; openFileLimit reads /proc', async (t) => {
  t.same(effectiveCaps({ jobs: 32, connections: 256 }, null), { jobs: 32, connections: 256 });
  t.same(effectiveCaps({ jobs: 32, connections: 256 }, 256), { jobs: 32, connections: 224 });
  t.same(effectiveCaps({ jobs: 32, connections: 256 }, 40), { jobs: 8, connections: 8 });
  t.same(effectiveCaps({ jobs: 32, connections: 256 }, 10), { jobs: 1, connections: 1 });
  const limit = openFileLimit();
  t.ok(limit === null || limit > 0, `this process may open ${limit} files`);
  t.equal(openFileLimit('/nonexistent'), null, 'no /proc: no limit known');
});

t.test('answerWholeJob: every pair of bytes, against the model', async (t) => {
  for (const direction of ['encrypt', 'decrypt'] as const) {
    const table = cipherTable(direction);
    let wrong = 0;
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b++) {
        const bytes = Buffer.concat([frame(FrameType.TEXT, Buffer.from([a])), frame(FrameType.KEY, Buffer.from([b])), frame(FrameType.END)]);
        const answer = answerWholeJob(bytes, table);
        const ok = ABC.includes(String.fromCharCode(a)) && ABC.includes(String.fromCharCode(b));
        if (!ok) {
          if (answer !== null) wrong++;
          continue;
        }
        const want = Buffer.concat([frame(FrameType.RESULT, model(direction, String.fromCharCode(a), String.fromCharCode(b))), frame(FrameType.DONE)]);
        if (!answer || !answer.reply.equals(want) || answer.symbols !== 1) wrong++;
      }
    }
    t.equal(wrong, 0, `${direction}: all 65,536 pairs: the model's symbol for two symbols, no answer (the pipeline's turn) otherwise`);
  }
});

t.test('answerWholeJob: any cut of text and key into frames; nothing for what is not whole and faultless', async (t) => {
  const table = cipherTable('encrypt');
  const symbols = fc.string({ unit: fc.constantFrom(...ABC), maxLength: 60 });
  const cuts = (s: string, sizes: number[]): string[] => {
    const out: string[] = [];
    for (let at = 0, i = 0; at < s.length; i++) out.push(s.slice(at, (at += 1 + (sizes[i % sizes.length] ?? 0))));
    return out;
  };
  fc.assert(
    fc.property(symbols, symbols, fc.array(fc.nat(10), { minLength: 1 }), fc.array(fc.nat(10), { minLength: 1 }), (text, extra, tSizes, kSizes) => {
      const key = text + extra;
      const frames = [...cuts(text, tSizes).map((p) => frame(FrameType.TEXT, p)), ...cuts(key, kSizes).map((p) => frame(FrameType.KEY, p))];
      const whole = Buffer.concat([...frames, frame(FrameType.END)]);
      const answer = answerWholeJob(whole, table);
      const want = text.length > 0 ? [frame(FrameType.RESULT, model('encrypt', text, key)), frame(FrameType.DONE)] : [frame(FrameType.DONE)];
      if (!answer || !answer.reply.equals(Buffer.concat(want))) return false;
      // Cut anywhere short of the END frame's last byte: not whole.
      for (let cut = 0; cut < whole.length; cut++) if (answerWholeJob(whole.subarray(0, cut), table) !== null) return false;
      return true;
    }),
  );
  const none = (what: string, bytes: Buffer): void => void t.equal(answerWholeJob(bytes, table), null, what);
  none('a key shorter than the text', Buffer.concat([frame(FrameType.TEXT, 'ABC'), frame(FrameType.KEY, 'AB'), frame(FrameType.END)]));
  none('a HELLO among the frames', Buffer.concat([frame(FrameType.TEXT, 'A'), frame(FrameType.HELLO, 'AB'), frame(FrameType.END)]));
  none('an ERROR from the client', Buffer.concat([frame(FrameType.ERROR), frame(FrameType.END)]));
  none('a TEXT frame over the limit', Buffer.concat([frame(FrameType.TEXT, 'A', (1 << 20) + 1), frame(FrameType.END)]));
  none('an END with a payload over the control limit', frame(FrameType.END, Buffer.alloc(1025)));
  t.same(answerWholeJob(Buffer.concat([frame(FrameType.END), Buffer.from('garbage')]), table)?.reply, frame(FrameType.DONE), 'frames after END are ignored');
});

t.test('answerWholeJob is linear in the bytes however they are framed (issue 20: a Buffer.concat a frame made it quadratic)', async (t) => {
  const n = 20_000;
  const text = Buffer.alloc(n * 6);
  for (let i = 0; i < n; i++) text.set([FrameType.TEXT, 0, 0, 0, 1, ABC.charCodeAt(i % 27)], i * 6);
  const key = 'Q'.repeat(n);
  const bytes = Buffer.concat([text, frame(FrameType.KEY, key), frame(FrameType.END)]);
  // Bytes copied by Buffer.concat while it answers: at most each part once.
  const concat = Buffer.concat;
  let copied = 0;
  Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
    const out = concat(list, total);
    copied += out.length;
    return out;
  }) as typeof Buffer.concat;
  let answer;
  try {
    answer = answerWholeJob(bytes, cipherTable('encrypt'));
  } finally {
    Buffer.concat = concat;
  }
  const plain = Array.from({ length: n }, (_, i) => ABC[i % 27]).join('');
  t.ok(answer !== null && answer.reply.equals(Buffer.concat([frame(FrameType.RESULT, model('encrypt', plain, key)), frame(FrameType.DONE)])), "the model's answer");
  t.ok(copied <= 2 * n, `${copied} bytes copied for ${n} symbols in ${n} frames: each part at most once`);
});

t.test('readTimeouts: plain whole milliseconds from 1 to 2147483647, or an error naming the variable', async (t) => {
  t.same(readTimeouts({}), DEFAULT_TIMEOUTS, 'the defaults');
  t.same(readTimeouts({ OTP_IDLE_TIMEOUT_MS: '1', OTP_WATCHDOG_MS: '2147483647' }), { ...DEFAULT_TIMEOUTS, idleMs: 1, watchdogMs: 2147483647 });
  for (const bad of ['0', '2147483648', '99999999999', '1e3', '0x10', ' 5', '5 ', '-1', '', '5.5', '05', '+5', '５']) {
    t.throws(() => readTimeouts({ OTP_HANDSHAKE_TIMEOUT_MS: bad }), { message: new RegExp(`^OTP_HANDSHAKE_TIMEOUT_MS=${JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not a whole number of milliseconds from 1 to 2147483647$`) }, `'${bad}'`);
  }
});

t.test('parsePort and parseCount: plain decimal numbers only', async (t) => {
  t.equal(parsePort('1'), 1);
  t.equal(parsePort('65535'), 65535);
  for (const bad of ['0', '65536', '00080', '080', '0x10', ' 2', '2 ', '1e1', '+80', '-1', '', '8o', '１']) {
    t.throws(() => parsePort(bad), { message: `'${bad}' is not a port: give a number from 1 to 65535` }, `port '${bad}'`);
  }
  t.equal(parseCount('--workers', '64', 1, 64), 64);
  for (const bad of ['0', '65', '05', '0x10', ' 2', '1e1', '', '2.0']) {
    t.throws(() => parseCount('--workers', bad, 1, 64), { message: `--workers '${bad}' is not a number from 1 to 64` }, `count '${bad}'`);
  }
});
