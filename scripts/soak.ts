// npm run soak [-- --seconds N] [-- --concurrency N]: a bounded run of mixed good and bad
// traffic against an enc_server and a dec_server on loopback, with cheap attacks among it
// (bursts of connections that send once and hold, drip a byte at a time, or say nothing),
// then a report: jobs served, failures by kind, and each server's descriptors and memory
// (main + workers) at start and end. Exits non-zero if a good job ever failed or a server
// died.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ErrorCode, FrameType, Role } from '../src/protocol/frames.js';
import { LINGER_MS } from '../src/protocol/timeouts.js';
import { run, startServer, type Server } from '../test/helpers/programs.js';
import {
  errorCode,
  exchange,
  frame,
  frameTypes,
  hello,
  model,
  randomSymbols,
  rawRoundTrip,
  RawConnection,
  serverFootprint,
  tempDir,
  waitUntil,
} from '../test/helpers/wire.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '8' },
  },
});
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
if (!(SECONDS > 0) || !(Number.isInteger(CONCURRENCY) && CONCURRENCY >= 1 && CONCURRENCY <= 64)) {
  process.stderr.write('soak: usage: tsx scripts/soak.ts [--seconds N] [--concurrency 1..64]\n');
  process.exit(1);
}

/** Good kinds must always succeed; bad kinds must get the answer the protocol gives them. */
type Kind =
  | 'good: raw enc job'
  | 'good: raw dec job'
  | 'good: enc_client + dec_client round trip'
  | 'bad: random garbage'
  | 'bad: wrong role'
  | 'bad: malformed frames'
  | 'bad: bad character'
  | 'bad: idle connection'
  | 'bad: disconnect mid-stream'
  | 'attack: 25 send once and hold'
  | 'attack: 25 slow drips'
  | 'attack: 25 silent';

const WEIGHTS: [Kind, number][] = [
  ['good: raw enc job', 30],
  ['good: raw dec job', 30],
  ['good: enc_client + dec_client round trip', 3],
  ['bad: random garbage', 8],
  ['bad: wrong role', 8],
  ['bad: malformed frames', 8],
  ['bad: bad character', 6],
  ['bad: idle connection', 2],
  ['bad: disconnect mid-stream', 5],
  ['attack: 25 send once and hold', 1],
  ['attack: 25 slow drips', 1],
  ['attack: 25 silent', 1],
];
const TOTAL_WEIGHT = WEIGHTS.reduce((sum, [, w]) => sum + w, 0);

function pick(): Kind {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const [kind, w] of WEIGHTS) if ((r -= w) < 0) return kind;
  return WEIGHTS[0][0];
}

interface Tally {
  count: number;
  ok: number;
  failed: number;
  lastFailure?: string;
}
const tally = new Map<Kind, Tally>(WEIGHTS.map(([kind]) => [kind, { count: 0, ok: 0, failed: 0 }]));

/** The dir for the client round trips: one text/key pair per actor. */
const holder = { teardowns: [] as (() => void)[], teardown(fn: () => void) { this.teardowns.push(fn); } };
const dir = tempDir(holder);

let idleNow = 0;
const MAX_IDLE = 20;
/** Attack connections held at once, all attacks together. */
let attackingNow = 0;
const MAX_ATTACKING = 150;
const ATTACK = 25;

/**
 * ATTACK connections that send `opening` (and, dripping, a byte every 250 ms) and hold for
 * 1 to 3 s, well inside the default timeouts. Each may be shed (BUSY) or left alone; any
 * other answer is a failure.
 */
async function attack(server: Server, opening: Buffer, drip: boolean): Promise<void> {
  if (attackingNow + ATTACK > MAX_ATTACKING) return;
  attackingNow += ATTACK;
  const list: RawConnection[] = [];
  try {
    for (let i = 0; i < ATTACK; i++) list.push(new RawConnection(server.port));
    await Promise.all(list.map((c) => c.connected));
    for (const c of list) if (opening.length > 0) c.socket.write(opening);
    const timer = drip ? setInterval(() => list.forEach((c) => c.socket.writable && c.socket.write('A')), 250) : null;
    await new Promise((r) => setTimeout(r, 1000 + Math.random() * 2000));
    if (timer) clearInterval(timer);
    for (const c of list) {
      const { frames } = await c.frames();
      const last = frames.at(-1);
      if (last && !(last.type === FrameType.ERROR && last.payload[0] === ErrorCode.BUSY)) {
        throw new Error(`an attacker got ${JSON.stringify(frames.map((f) => f.type))}`);
      }
    }
  } finally {
    list.forEach((c) => c.destroy());
    attackingNow -= ATTACK;
  }
}

async function oneConnection(kind: Kind, enc: Server, dec: Server, actor: number): Promise<void> {
  const either = Math.random() < 0.5 ? enc : dec;
  const isEnc = either === enc;
  switch (kind) {
    case 'good: raw enc job':
      return rawRoundTrip(enc.port, 1 + Math.floor(Math.random() * 4000), 'encrypt');
    case 'good: raw dec job':
      return rawRoundTrip(dec.port, 1 + Math.floor(Math.random() * 4000), 'decrypt');
    case 'good: enc_client + dec_client round trip': {
      const n = 1 + Math.floor(Math.random() * 300_000);
      const text = randomSymbols(n);
      const key = randomSymbols(n + 10);
      const [t, k, c] = ['text', 'key', 'cipher'].map((f) => join(dir, `${f}${actor}`));
      writeFileSync(t, `${text}\n`);
      writeFileSync(k, `${key}\n`);
      const encrypted = await run('enc_client', [t, k, String(enc.port)]);
      if (encrypted.code !== 0 || encrypted.stdout.toString() !== `${model('encrypt', text, key)}\n`) {
        throw new Error(`enc_client exit ${encrypted.code}: ${encrypted.stderr.trim()}`);
      }
      writeFileSync(c, encrypted.stdout);
      const decrypted = await run('dec_client', [c, k, String(dec.port)]);
      if (decrypted.code !== 0 || decrypted.stdout.toString() !== `${text}\n`) {
        throw new Error(`dec_client exit ${decrypted.code}: ${decrypted.stderr.trim()}`);
      }
      return;
    }
    case 'bad: random garbage': {
      const bytes = randomBytes(1 + Math.floor(Math.random() * 4000));
      if (bytes[0] === FrameType.HELLO) bytes[0] = 0xff;
      const reply = await exchange(either.port, bytes);
      if (errorCode(reply) !== 1) throw new Error(`garbage answered with ${JSON.stringify(frameTypes(reply))}`);
      return;
    }
    case 'bad: wrong role': {
      const reply = await exchange(either.port, [hello(isEnc ? Role.DECRYPT : Role.ENCRYPT), frame(FrameType.TEXT, 'AB'), frame(FrameType.KEY, 'AB'), frame(FrameType.END)]);
      if (errorCode(reply) !== 3 || reply.frames.length !== 1) throw new Error(`wrong role answered with ${JSON.stringify(frameTypes(reply))}`);
      return;
    }
    case 'bad: malformed frames': {
      const frames = Array.from({ length: 1 + Math.floor(Math.random() * 6) }, () => {
        const type = Math.floor(Math.random() * 9);
        const payload = randomBytes(Math.floor(Math.random() * 200));
        return frame(type, payload, Math.random() < 0.2 ? Math.floor(Math.random() * 0xffffffff) : undefined);
      });
      const reply = await exchange(either.port, [hello(isEnc ? Role.ENCRYPT : Role.DECRYPT), ...frames]);
      const last = frameTypes(reply).at(-1);
      if (reply.malformed || (last !== FrameType.DONE && last !== FrameType.ERROR)) {
        throw new Error(`malformed frames answered with ${JSON.stringify(frameTypes(reply))}`);
      }
      return;
    }
    case 'bad: bad character': {
      const reply = await exchange(either.port, [
        hello(isEnc ? Role.ENCRYPT : Role.DECRYPT),
        frame(FrameType.TEXT, 'HELLO world'),
        frame(FrameType.KEY, 'ABCDEFGHIJK'),
        frame(FrameType.END),
      ]);
      if (errorCode(reply) !== 4) throw new Error(`bad text answered with ${JSON.stringify(frameTypes(reply))}`);
      return;
    }
    case 'bad: idle connection': {
      if (idleNow >= MAX_IDLE) return;
      idleNow++;
      try {
        const idle = new RawConnection(either.port);
        await idle.connected;
        // Held open, silent, for well under the handshake timeout, then dropped.
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 1500));
        idle.destroy();
      } finally {
        idleNow--;
      }
      return;
    }
    case 'attack: 25 send once and hold':
      return attack(either, Buffer.concat([hello(isEnc ? Role.ENCRYPT : Role.DECRYPT), frame(FrameType.TEXT, 'ABC', 100)]), false);
    case 'attack: 25 slow drips':
      return attack(either, Buffer.concat([hello(isEnc ? Role.ENCRYPT : Role.DECRYPT), frame(FrameType.TEXT, '', 1000)]), true);
    case 'attack: 25 silent':
      return attack(either, Buffer.alloc(0), false);
    case 'bad: disconnect mid-stream': {
      const chunk = randomSymbols(1 + Math.floor(Math.random() * 100_000));
      await exchange(either.port, [hello(isEnc ? Role.ENCRYPT : Role.DECRYPT), frame(FrameType.TEXT, chunk), frame(FrameType.KEY, chunk.slice(0, chunk.length >> 1))], {
        after: 'destroy',
      });
      return;
    }
  }
}

function mib(kb: number): string {
  return (kb / 1024).toFixed(1);
}

async function main(): Promise<void> {
  const [enc, dec] = await Promise.all([startServer('enc_server'), startServer('dec_server')]);
  const servers = [
    { name: 'enc_server', server: enc },
    { name: 'dec_server', server: dec },
  ];
  const died: string[] = [];
  let stopping = false;
  for (const { name, server } of servers) {
    server.child.once('exit', (code, signal) => {
      if (!stopping) died.push(`${name} exited (${signal ?? code}) during the soak`);
    });
  }
  for (const { server } of servers) await waitUntil(() => serverFootprint(server.child.pid!).workers === 5, 10_000, 'five workers');
  // Warm up, so that every worker has started and served before the start figures are taken.
  await Promise.all(
    [enc, dec].flatMap((server) =>
      Array.from({ length: 10 }, async () => {
        for (let i = 0; i < 5; i++) await rawRoundTrip(server.port, 100, server === enc ? 'encrypt' : 'decrypt');
      }),
    ),
  );
  const start = servers.map(({ server }) => serverFootprint(server.child.pid!));
  console.log(
    `soak: ${SECONDS} s of mixed traffic, ${CONCURRENCY} at a time, loopback only: ` +
      `enc_server on port ${enc.port} (pid ${enc.child.pid}), dec_server on port ${dec.port} (pid ${dec.child.pid})`,
  );

  const started = Date.now();
  const deadline = started + SECONDS * 1000;
  let lastReport = started;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, actor) => {
      while (Date.now() < deadline && died.length === 0) {
        const kind = pick();
        const entry = tally.get(kind)!;
        entry.count++;
        try {
          await oneConnection(kind, enc, dec, actor);
          entry.ok++;
        } catch (err) {
          entry.failed++;
          entry.lastFailure = (err as Error).message;
        }
        if (actor === 0 && Date.now() - lastReport >= 10_000) {
          lastReport = Date.now();
          const served = [...tally].filter(([k]) => k.startsWith('good')).reduce((s, [, v]) => s + v.ok, 0);
          console.log(`  ${Math.round((lastReport - started) / 1000)} s: ${served} good jobs served so far`);
        }
      }
    }),
  );
  const took = (Date.now() - started) / 1000;

  // Rejected connections may linger up to LINGER_MS: show the end as it is, then settled.
  const endNow = servers.map(({ server }) => (server.child.exitCode === null ? serverFootprint(server.child.pid!) : null));
  await Promise.all(
    servers.map(({ server }, i) =>
      waitUntil(
        () => server.child.exitCode !== null || serverFootprint(server.child.pid!).mainFds <= start[i].mainFds + 2,
        LINGER_MS * 3,
        'settle',
      ).catch(() => {}),
    ),
  );
  const endSettled = servers.map(({ server }) => (server.child.exitCode === null ? serverFootprint(server.child.pid!) : null));

  console.log('');
  console.log(`traffic (${took.toFixed(1)} s)`.padEnd(44) + 'count'.padStart(8) + 'ok'.padStart(8) + 'failed'.padStart(8));
  for (const [kind, v] of tally) {
    console.log(`  ${kind}`.padEnd(44) + String(v.count).padStart(8) + String(v.ok).padStart(8) + String(v.failed).padStart(8));
  }
  const good = [...tally].filter(([k]) => k.startsWith('good'));
  const bad = [...tally].filter(([k]) => !k.startsWith('good'));
  const served = good.reduce((s, [, v]) => s + v.ok, 0);
  const goodFailed = good.reduce((s, [, v]) => s + v.failed, 0);
  const badUnexpected = bad.reduce((s, [, v]) => s + v.failed, 0);
  console.log(`jobs served: ${served}; good jobs failed: ${goodFailed}; bad traffic not answered as the protocol says: ${badUnexpected}`);
  for (const [kind, v] of tally) if (v.lastFailure) console.log(`  last failure of '${kind}': ${v.lastFailure}`);

  console.log('');
  console.log('server        when             fds main  fds workers  RSS main MiB  RSS workers MiB  workers');
  servers.forEach(({ name }, i) => {
    const rows: [string, ReturnType<typeof serverFootprint> | null][] = [
      ['start', start[i]],
      ['end', endNow[i]],
      ['end, settled', endSettled[i]],
    ];
    for (const [when, f] of rows) {
      if (!f) {
        console.log(`${name.padEnd(14)}${when.padEnd(17)}(not running)`);
        continue;
      }
      console.log(
        name.padEnd(14) +
          when.padEnd(17) +
          String(f.mainFds).padStart(8) +
          String(f.workerFds).padStart(13) +
          mib(f.mainRssKb).padStart(14) +
          mib(f.workerRssKb).padStart(17) +
          String(f.workers).padStart(9),
      );
    }
  });

  stopping = true;
  await Promise.all(servers.map(({ server }) => server.stop()));
  const how = servers.map(({ server }) => server.child.signalCode ?? `exit ${server.child.exitCode}`);
  servers.forEach(({ name }, i) => console.log(`${name} stopped with SIGTERM: ${how[i]}`));
  for (const fn of holder.teardowns) fn();

  const problems = [...died];
  if (goodFailed > 0) problems.push(`${goodFailed} good jobs failed`);
  how.forEach((h, i) => h !== 'SIGTERM' && !died.length && problems.push(`${servers[i].name} ended with ${h} on SIGTERM, not by it`));
  if (problems.length > 0) {
    console.log(`soak: FAILED: ${problems.join('; ')}`);
    process.exit(1);
  }
  console.log('soak: OK');
}

main().catch((err: Error) => {
  console.error(`soak: ${err.stack ?? err.message}`);
  process.exit(1);
});
