// Capacity: tiny jobs a second at many concurrent connections, enc_server against the C reference's fork-per-connection server.
// `tsx bench/capacity.ts [--seconds S] [--runs N] [--connections C]` runs it alone; bench.ts calls measureCapacity.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { BenchError, buildReference, median, Server } from './lib.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const ROOT = join(__dirname, '..');
const C_SOURCE = join(ROOT, '..', 'shared', 'bench', 'otp_ref.c');
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ ';
/** plaintext1's 36 symbols: the 37-byte file of the classic scenario. */
const SYMBOLS = 36;

export interface CapacityRun {
  jobsPerSecond: number;
  jobs: number;
  failures: number;
  busy: number;
}

export interface CapacityResult {
  connections: number;
  seconds: number;
  runs: number;
  symbols: number;
  otp: CapacityRun[];
  reference: CapacityRun[];
  otpMedian: number;
  referenceMedian: number;
  ratio: number;
}

/** One job on a fresh connection, as bytes, for either server. */
interface Wire {
  request: Buffer;
  /** The whole reply is in once this many bytes came. */
  replyBytes: number;
  /** Reply check: the answer's symbols are where they should be. */
  ok(reply: Buffer): boolean;
  busy(reply: Buffer): boolean;
}

function symbols(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = ALPHABET.charCodeAt((i * 7 + seed * 13) % 27);
  return out;
}

function encrypted(text: Buffer, key: Buffer): Buffer {
  const out = Buffer.alloc(text.length);
  for (let i = 0; i < text.length; i++) out[i] = ALPHABET.charCodeAt((ALPHABET.indexOf(String.fromCharCode(text[i])) + ALPHABET.indexOf(String.fromCharCode(key[i]))) % 27);
  return out;
}

function frame(type: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = type;
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** The otp protocol (docs/PROTOCOL.md): HELLO, TEXT, KEY, END; RESULT, DONE back. */
function otpWire(text: Buffer, key: Buffer): Wire {
  const expected = Buffer.concat([frame(5, encrypted(text, key)), frame(6, Buffer.alloc(0))]);
  return {
    request: Buffer.concat([frame(1, Buffer.from([1, 0x45])), frame(2, text), frame(3, key), frame(4, Buffer.alloc(0))]),
    replyBytes: expected.length,
    ok: (reply) => reply.equals(expected),
    busy: (reply) => reply[0] === 7 && reply[5] === 10,
  };
}

/** otp_ref.c's wire: role byte, u64 length (host order), text, key; 'Y' and the result back. */
function referenceWire(text: Buffer, key: Buffer): Wire {
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length));
  const expected = Buffer.concat([Buffer.from('Y'), encrypted(text, key)]);
  return {
    request: Buffer.concat([Buffer.from('E'), length, text, key]),
    replyBytes: expected.length,
    ok: (reply) => reply.equals(expected),
    busy: () => false,
  };
}

/** One connection, one job: connect, one write, half-close, read to the end. */
function oneJob(port: number, wire: Wire): Promise<'ok' | 'busy' | 'failed'> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    const parts: Buffer[] = [];
    let settled = false;
    const finish = (outcome: 'ok' | 'busy' | 'failed'): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(outcome);
    };
    socket.on('connect', () => socket.end(wire.request));
    socket.on('data', (chunk: Buffer) => parts.push(chunk));
    socket.on('error', () => finish('failed'));
    socket.on('close', () => {
      const reply = Buffer.concat(parts);
      finish(wire.ok(reply) ? 'ok' : wire.busy(reply) ? 'busy' : 'failed');
    });
  });
}

/** `connections` loops of back-to-back jobs for `seconds`. */
async function load(port: number, wire: Wire, connections: number, seconds: number): Promise<CapacityRun> {
  const until = performance.now() + seconds * 1000;
  let jobs = 0;
  let failures = 0;
  let busy = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < until) {
        const outcome = await oneJob(port, wire);
        if (outcome === 'ok') jobs++;
        else if (outcome === 'busy') busy++;
        else failures++;
      }
    }),
  );
  const took = (performance.now() - started) / 1000;
  return { jobsPerSecond: Math.round(jobs / took), jobs, failures, busy };
}

/** Tiny jobs a second from `connections` loops against a server on `port`: an otp server's protocol, or the C reference's. */
export function tinyJobs(port: number, kind: 'otp' | 'reference', connections: number, seconds: number): Promise<CapacityRun> {
  const text = symbols(SYMBOLS, 1);
  const key = symbols(SYMBOLS, 2);
  return load(port, kind === 'otp' ? otpWire(text, key) : referenceWire(text, key), connections, seconds);
}

/**
 * enc_server (default options) and the C reference (`otp_ref serve enc PORT`, built here
 * with cc -O2), each loaded in turn by the same generator, `runs` times alternating.
 */
export async function measureCapacity(
  options: { connections?: number; seconds?: number; runs?: number; note?: (line: string) => void; server?: string; reference?: string } = {},
): Promise<CapacityResult> {
  const connections = options.connections ?? 50;
  const seconds = options.seconds ?? 3;
  const runs = options.runs ?? 3;
  const note = options.note ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'otp-capacity-'));
  try {
    const refBin = options.reference ?? buildReference(C_SOURCE, dir).binary;
    if (!refBin) throw new BenchError(`capacity: no C reference (cc and ${C_SOURCE} are needed)`);
    const otp = await Server.start(options.server ?? join(ROOT, 'enc_server'), 'enc_server (capacity)');
    const ref = await Server.start(refBin, 'C reference server (capacity)', ['serve', 'enc']);
    try {
      // Warm-up, unmeasured: the JIT, the workers, the socket paths.
      await tinyJobs(otp.port, 'otp', connections, 1);
      await tinyJobs(ref.port, 'reference', connections, 1);
      const otpRuns: CapacityRun[] = [];
      const refRuns: CapacityRun[] = [];
      for (let run = 1; run <= runs; run++) {
        otpRuns.push(await tinyJobs(otp.port, 'otp', connections, seconds));
        refRuns.push(await tinyJobs(ref.port, 'reference', connections, seconds));
        note(`capacity run ${run}/${runs}: enc_server ${otpRuns.at(-1)!.jobsPerSecond} jobs/s, C reference ${refRuns.at(-1)!.jobsPerSecond} jobs/s`);
      }
      const otpMedian = median(otpRuns.map((r) => r.jobsPerSecond));
      const referenceMedian = median(refRuns.map((r) => r.jobsPerSecond));
      return {
        connections,
        seconds,
        runs,
        symbols: SYMBOLS,
        otp: otpRuns,
        reference: refRuns,
        otpMedian,
        referenceMedian,
        ratio: Number((otpMedian / referenceMedian).toFixed(2)),
      };
    } finally {
      await Promise.all([otp.stop(), ref.stop()]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function renderCapacity(c: CapacityResult): string {
  const failures = c.otp.reduce((n, r) => n + r.failures, 0);
  const busy = c.otp.reduce((n, r) => n + r.busy, 0);
  return (
    `capacity: tiny jobs (${c.symbols} symbols) at ${c.connections} concurrent connections, ${c.seconds} s per run: ` +
    `enc_server ${c.otpMedian} jobs/s, C reference (fork per connection) ${c.referenceMedian} jobs/s ` +
    `(medians of ${c.runs}): ${c.ratio.toFixed(2)}x` +
    (failures || busy ? ` [enc_server: ${failures} failed, ${busy} busy]` : '')
  );
}

if (require.main === module) {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, runs: { type: 'string' }, connections: { type: 'string' } } });
  measureCapacity({
    seconds: values.seconds ? Number(values.seconds) : undefined,
    runs: values.runs ? Number(values.runs) : undefined,
    connections: values.connections ? Number(values.connections) : undefined,
    note: (line) => process.stderr.write(`bench: ${line}\n`),
  }).then(
    (result) => {
      process.stdout.write(`${renderCapacity(result)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`bench: error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
