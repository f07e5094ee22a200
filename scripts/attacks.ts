// tsx scripts/attacks.ts --attack NAME (after ./compileall): one of the cheap attacks of issue 20 at full
// scale against an enc_server with its default caps and timeouts, attackers reopened as the server closes
// them (at once, or --reopen-after MS), while real clients run one after another; reports how many were
// served within 2 s, their times, and the server's log lines. Attacks: silent (plain server), silent-tls,
// clienthello-tls (a ClientHello short of its last byte), silent-proxy, proxy-v2-partial (a PROXY v2 header
// short of its end), drip (160 jobs paying 200 symbols of text and key with their HELLO, or --first-payment
// SYMBOLS, and 200 every 250 ms after, so that each takes a job slot the moment it connects; real 1 MB
// jobs). The real clients' times include starting a Node process on cores the attack may keep busy: the
// time of `enc_client --version` during the attack is given beside them.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { parseArgs } from 'node:util';
import { FrameType } from '../src/protocol/frames.js';
import { makeCerts } from '../test/helpers/certs.js';
import { bin, startServer } from '../test/helpers/programs.js';
import { frame, hello, model, randomSymbols, tempDir } from '../test/helpers/wire.js';

const ATTACKS = ['silent', 'silent-tls', 'clienthello-tls', 'silent-proxy', 'proxy-v2-partial', 'drip'] as const;
type Attack = (typeof ATTACKS)[number];

const { values } = parseArgs({
  options: {
    attack: { type: 'string' },
    attackers: { type: 'string' },
    clients: { type: 'string' },
    /** Attackers that are closed are opened again, unless this is given. */
    'no-reopen': { type: 'boolean', default: false },
    /** How long a closed attacker waits before it opens again: at once by default. */
    'reopen-after': { type: 'string', default: '0' },
    'warm-up': { type: 'string', default: '3000' },
    /** drip: symbols of text and key each drip sends with its HELLO. */
    'first-payment': { type: 'string', default: '200' },
  },
});
const attack = values.attack as Attack;
if (!ATTACKS.includes(attack)) {
  process.stderr.write(`attacks: usage: tsx scripts/attacks.ts --attack ${ATTACKS.join('|')} [--attackers N] [--clients N] [--no-reopen | --reopen-after MS] [--warm-up MS] [--first-payment SYMBOLS]\n`);
  process.exit(1);
}
const ATTACKERS = Number(values.attackers ?? (attack === 'drip' ? 160 : 1500));
const CLIENTS = Number(values.clients ?? (attack === 'drip' ? 10 : 15));
const REOPEN = !values['no-reopen'];
const REOPEN_AFTER_MS = Number(values['reopen-after']);
const FIRST_PAYMENT = Number(values['first-payment']);
const SERVED_WITHIN_MS = 2_000;

const holder = { teardowns: [] as (() => void)[], teardown(fn: () => void) { this.teardowns.push(fn); } };
const dir = tempDir(holder);
const certs = makeCerts(dir);
const usesTls = attack === 'silent-tls' || attack === 'clienthello-tls';
const usesProxy = attack === 'silent-proxy' || attack === 'proxy-v2-partial';

/** The first flight of a real TLS client, as Node sends it. */
async function clientHello(): Promise<Buffer> {
  const sink = createServer();
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  const got = new Promise<Buffer>((resolve) => sink.once('connection', (s: Socket) => s.once('data', resolve)));
  const secure = tls.connect({ port: (sink.address() as AddressInfo).port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false });
  secure.on('error', () => {});
  const bytes = await got;
  secure.destroy();
  sink.close();
  return bytes;
}

async function opening(): Promise<Buffer> {
  switch (attack) {
    case 'clienthello-tls': {
      const whole = await clientHello();
      return whole.subarray(0, whole.length - 1);
    }
    case 'proxy-v2-partial':
      // The fixed 16 bytes announce 12 bytes of IPv4 addresses; 11 of them come.
      return Buffer.from('0d0a0d0a000d0a515549540a2111000c7f0000017f00000104d2', 'hex');
    case 'drip':
      return hello();
    default:
      return Buffer.alloc(0);
  }
}

let open = 0;
let opened = 0;
let stopping = false;
const sockets = new Set<Socket>();

function attacker(port: number, first: Buffer): void {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  sockets.add(socket);
  socket.setNoDelay(true);
  let drip: NodeJS.Timeout | null = null;
  let connected = false;
  socket.on('error', () => {});
  socket.on('data', () => {});
  socket.on('end', () => socket.destroy());
  socket.once('connect', () => {
    connected = true;
    open++;
    opened++;
    if (attack === 'drip') {
      const text = randomSymbols(200);
      const bytes = Buffer.concat([frame(FrameType.TEXT, text), frame(FrameType.KEY, text)]);
      const opening = randomSymbols(FIRST_PAYMENT);
      socket.write(Buffer.concat([first, frame(FrameType.TEXT, opening), frame(FrameType.KEY, opening)]));
      drip = setInterval(() => socket.writable && socket.write(bytes), 250);
    } else if (first.length > 0) {
      socket.write(first);
    }
  });
  socket.once('close', (hadError) => {
    if (connected) open--;
    if (drip) clearInterval(drip);
    sockets.delete(socket);
    if (!stopping && REOPEN) setTimeout(() => attacker(port, first), Math.max(REOPEN_AFTER_MS, hadError ? 5 : 0));
  });
}

/** One real client in a process of its own: its exit code and time. */
async function realClient(port: number, files: { text: string; key: string }, expected: string): Promise<{ ok: boolean; ms: number; said: string }> {
  const started = Date.now();
  const child = usesProxy
    ? spawn(process.execPath, ['-e', PROXY_CLIENT, String(port), files.text, files.key], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(bin('enc_client'), [files.text, files.key, String(port), ...(usesTls ? ['--tls-ca', certs.ca] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = await once(child, 'close');
  clearTimeout(kill);
  const ms = Date.now() - started;
  const ok = code === 0 && Buffer.concat(out).toString('latin1') === expected;
  return { ok, ms, said: err.trim() || (code === 0 ? 'exit 0 with the wrong output' : `exit ${code}`) };
}

/** How long `enc_client --version` takes, the median of three: a Node process's start, with nothing of the server in it. */
async function clientStart(): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = Date.now();
    await once(spawn(bin('enc_client'), ['--version'], { stdio: 'ignore' }), 'close');
    times.push(Date.now() - started);
  }
  return times.sort((a, b) => a - b)[1];
}

/** A client behind a balancer: a PROXY v1 header, then the job of files TEXT and KEY; prints the result's symbols. */
const PROXY_CLIENT = `
const net = require('node:net'), fs = require('node:fs');
const [port, textFile, keyFile] = process.argv.slice(1);
const text = fs.readFileSync(textFile, 'latin1').replace(/\\n$/, ''), key = fs.readFileSync(keyFile, 'latin1').replace(/\\n$/, '');
const f = (type, s) => { const b = Buffer.alloc(5 + s.length); b[0] = type; b.writeUInt32BE(s.length, 1); b.write(s, 5, 'latin1'); return b; };
const socket = net.connect({ port: Number(port), host: '127.0.0.1' });
socket.end(Buffer.concat([Buffer.from('PROXY TCP4 198.51.100.7 10.0.0.1 40000 57171\\r\\n'), f(1, '\\x01E'), f(2, text), f(3, key), f(4, '')]));
const got = [];
socket.on('data', (c) => got.push(c));
socket.on('error', (err) => { process.stderr.write(err.message + '\\n'); process.exit(2); });
socket.on('close', () => {
  const bytes = Buffer.concat(got); let out = '', done = false;
  for (let at = 0; at + 5 <= bytes.length; ) { const type = bytes[at], n = bytes.readUInt32BE(at + 1); if (type === 5) out += bytes.toString('latin1', at + 5, at + 5 + n); if (type === 6) done = true; if (type === 7) { process.stderr.write('ERROR ' + bytes[at + 5] + ' ' + bytes.toString('utf8', at + 6, at + 5 + n) + '\\n'); process.exit(2); } at += 5 + n; }
  if (!done) { process.stderr.write('no DONE: ' + bytes.length + ' bytes\\n'); process.exit(2); }
  process.stdout.write(out + '\\n');
});
`;

async function main(): Promise<void> {
  const args = [...(usesTls ? ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey] : []), ...(usesProxy ? ['--proxy-protocol'] : [])];
  const server = await startServer('enc_server', args);
  const symbols = attack === 'drip' ? 1_000_000 : 300;
  const text = randomSymbols(symbols);
  const key = randomSymbols(symbols);
  const files = { text: join(dir, 'text'), key: join(dir, 'key') };
  writeFileSync(files.text, `${text}\n`);
  writeFileSync(files.key, `${key}\n`);
  const expected = `${model('encrypt', text, key)}\n`;
  // One real client before the attack: the workers' code is warm for the ones measured.
  await realClient(server.port, files, expected);
  const first = await opening();
  const logBefore = server.stderr().length;
  const attackStarted = Date.now();
  for (let i = 0; i < ATTACKERS; i++) attacker(server.port, first);
  await new Promise((r) => setTimeout(r, Number(values['warm-up'])));
  const results: { ok: boolean; ms: number; said: string }[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    results.push(await realClient(server.port, files, expected));
    await new Promise((r) => setTimeout(r, 100));
  }
  const startMs = await clientStart();
  const seconds = (Date.now() - attackStarted) / 1000;
  stopping = true;
  for (const s of sockets) s.destroy();
  // Bursts are logged once they have been quiet for a second.
  await new Promise((r) => setTimeout(r, 1500));
  const log = server.stderr().slice(logBefore).split('\n').filter(Boolean);
  await server.stop();
  for (const fn of holder.teardowns) fn();
  const served = results.filter((r) => r.ok && r.ms <= SERVED_WITHIN_MS);
  const times = results.map((r) => r.ms).sort((a, b) => a - b);
  const median = (list: number[]): string => (list.length > 0 ? String(list[Math.floor(list.length / 2)]) : '-');
  const servedTimes = served.map((r) => r.ms).sort((a, b) => a - b);
  const reopened = REOPEN ? (REOPEN_AFTER_MS > 0 ? `, reopened after ${REOPEN_AFTER_MS} ms` : ', reopened at once') : '';
  const paying = attack === 'drip' && FIRST_PAYMENT !== 200 ? `, paying ${FIRST_PAYMENT} symbols first` : '';
  console.log(`${attack}: ${ATTACKERS} attackers${reopened}${paying} (${opened} connections opened in ${seconds.toFixed(1)} s, ${open} open at the end)`);
  console.log(`  real clients served within ${SERVED_WITHIN_MS} ms: ${served.length} of ${CLIENTS}; times ${times.join(' ')} ms (median ${median(times)}; of those served, ${median(servedTimes)}); enc_client --version alone: ${startMs} ms`);
  const failures = results.filter((r) => !r.ok).map((r) => r.said);
  if (failures.length > 0) console.log(`  failures: ${[...new Set(failures)].slice(0, 3).join(' | ')}`);
  console.log(`  server log: ${log.length} lines in ${seconds.toFixed(1)} s${log.length > 0 ? `; e.g. ${[...new Set(log.map((l) => l.replace(/\d+/g, 'N')))].slice(0, 4).join(' | ')}` : ''}`);
}

void main();
