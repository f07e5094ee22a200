// What tiny frames cost a server: its CPU per byte received for a job cut into one-byte frames (alone, or TEXT and KEY in turn) against the same job in 1 MiB frames, and a real job's time beside six connections sending one-byte frames.
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { BenchError, median, MIB, runProgram, type Server, treeCpuNanoseconds, writeRandomText } from './lib.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ ';
const HELLO = Buffer.from([1, 0, 0, 0, 2, 1, 0x45]);
const END = Buffer.from([4, 0, 0, 0, 0]);
/** Symbols of each measured job: the large one's bytes on the wire about those of the tiny ones, so that a job's fixed costs weigh alike. */
const TINY_SYMBOLS = 4 * MIB;
const LARGE_SYMBOLS = 16 * MIB;
/** The real job beside the tiny-frame senders, and how fast each of those six sends. */
const REAL_JOB_BYTES = 50_000_000;
const SENDERS = 6;
const SENDER_BYTES_PER_SECOND = 2_000_000;

export interface TinyFramesResult {
  runs: number;
  /** Symbols of the tiny-frame jobs (the 1 MiB-frame job has LARGE_SYMBOLS). */
  symbols: number;
  /** Server CPU nanoseconds per byte received, medians. */
  nsPerByte: { large: number; tinyText: number; tinyAlternating: number; firstRead: number };
  /** tiny over large; the target is at most 4. */
  ratio: { tinyText: number; tinyAlternating: number; firstRead: number };
  /** A real REAL_JOB_BYTES job's wall time alone and beside SENDERS tiny-frame senders, medians; the target is at most 2x. */
  realJob: { aloneSeconds: number; besideSeconds: number; ratio: number };
}

function header(type: number, length: number): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(length, 1);
  return h;
}

function symbolsOf(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = ALPHABET.charCodeAt((i * 7 + seed) % 27);
  return out;
}

/** The job's bytes after the HELLO, each way: 1 MiB TEXT and KEY frames in turn; one-byte TEXT frames then the KEY; one-byte TEXT and KEY in turn. */
function jobs(n: number, largeN: number): { large: Buffer; tinyText: Buffer; tinyAlternating: Buffer } {
  const large: Buffer[] = [];
  const largeText = symbolsOf(largeN, 3);
  for (let at = 0; at < largeN; at += MIB) {
    const end = Math.min(largeN, at + MIB);
    large.push(header(2, end - at), largeText.subarray(at, end), header(3, end - at), largeText.subarray(at, end));
  }
  const text = symbolsOf(n, 1);
  const key = symbolsOf(n, 2);
  // One-byte TEXT frames, with the key after every 512 KiB of them so that the text never runs a window ahead.
  const tinyText = Buffer.allocUnsafe(n * 6 + Math.ceil(n / (512 << 10)) * 5 + n);
  let p = 0;
  for (let at = 0; at < n; at += 512 << 10) {
    const end = Math.min(n, at + (512 << 10));
    for (let i = at; i < end; i++) {
      tinyText[p] = 2;
      tinyText.writeUInt32BE(1, p + 1);
      tinyText[p + 5] = text[i];
      p += 6;
    }
    p += header(3, end - at).copy(tinyText, p);
    p += key.copy(tinyText, p, at, end);
  }
  const tinyAlternating = Buffer.allocUnsafe(n * 12);
  for (let i = 0, q = 0; i < n; i++, q += 12) {
    tinyAlternating[q] = 2;
    tinyAlternating.writeUInt32BE(1, q + 1);
    tinyAlternating[q + 5] = text[i];
    tinyAlternating[q + 6] = 3;
    tinyAlternating.writeUInt32BE(1, q + 7);
    tinyAlternating[q + 11] = key[i];
  }
  return { large: Buffer.concat([...large, END]), tinyText: Buffer.concat([tinyText.subarray(0, p), END]), tinyAlternating: Buffer.concat([tinyAlternating, END]) };
}

/**
 * A small job of one-byte TEXT frames and its key whole, sent as one write after its HELLO,
 * so that it comes whole in the server's first read (answered there, src/server/whole-job.ts).
 */
const FIRST_READ_SYMBOLS = 9_300;
const FIRST_READ_JOBS = 200;
function firstReadJob(): Buffer {
  const text = symbolsOf(FIRST_READ_SYMBOLS, 4);
  const frames = Buffer.allocUnsafe(FIRST_READ_SYMBOLS * 6);
  for (let i = 0; i < FIRST_READ_SYMBOLS; i++) {
    frames[i * 6] = 2;
    frames.writeUInt32BE(1, i * 6 + 1);
    frames[i * 6 + 5] = text[i];
  }
  return Buffer.concat([HELLO, frames, header(3, FIRST_READ_SYMBOLS), text, END]);
}

/** Server CPU nanoseconds per byte received for FIRST_READ_JOBS small jobs, each written in one piece. */
async function firstReadCpuPerByte(server: Server, job: Buffer): Promise<number> {
  const before = treeCpuNanoseconds(server.pid);
  for (let i = 0; i < FIRST_READ_JOBS; i++) await exchange(server.port, job, false);
  return (treeCpuNanoseconds(server.pid) - before) / (FIRST_READ_JOBS * job.length);
}

/** Sends HELLO and `job`, reads the reply to its end; checks it ends with DONE. */
async function exchange(port: number, job: Buffer, hello = true): Promise<void> {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  let tail = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => (tail = Buffer.concat([tail, chunk]).subarray(-5)));
  const closed = once(socket, 'close');
  socket.on('end', () => socket.end());
  await once(socket, 'connect');
  if (hello) socket.write(HELLO);
  socket.end(job);
  await closed;
  if (!tail.equals(header(6, 0))) throw new BenchError(`a tiny-frames job did not end with DONE (last bytes ${tail.toString('hex')})`);
}

/** Server CPU nanoseconds per byte the server received for one job. */
async function cpuPerByte(server: Server, job: Buffer): Promise<number> {
  const before = treeCpuNanoseconds(server.pid);
  await exchange(server.port, job);
  return (treeCpuNanoseconds(server.pid) - before) / (job.length + HELLO.length);
}

/** A connection that sends one-byte TEXT and KEY frames in turn at `bytesPerSecond` until stopped. */
function tinySender(port: number, bytesPerSecond: number): { stop(): Promise<void> } {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  // The results are read and dropped, so that the server keeps taking the frames.
  socket.resume();
  const pair = Buffer.from([2, 0, 0, 0, 1, 65, 3, 0, 0, 0, 1, 66]);
  const burst = Buffer.concat(Array.from({ length: Math.max(1, Math.round(bytesPerSecond / 100 / pair.length)) }, () => pair));
  let stopped = false;
  socket.once('connect', () => socket.write(HELLO));
  const timer = setInterval(() => {
    if (!stopped && socket.writable && socket.writableLength < 4 * burst.length) socket.write(burst);
  }, 10);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      socket.destroy();
    },
  };
}

export async function measureTinyFrames(dir: string, server: Server, client: string, runs: number, note: (line: string) => void): Promise<TinyFramesResult> {
  const ways = jobs(TINY_SYMBOLS, LARGE_SYMBOLS);
  const small = firstReadJob();
  const samples = { large: [] as number[], tinyText: [] as number[], tinyAlternating: [] as number[], firstRead: [] as number[] };
  // Warm-up, unmeasured.
  for (const job of Object.values(ways)) await exchange(server.port, job);
  await firstReadCpuPerByte(server, small);
  for (let run = 1; run <= runs; run++) {
    for (const way of ['large', 'tinyText', 'tinyAlternating'] as const) samples[way].push(await cpuPerByte(server, ways[way]));
    samples.firstRead.push(await firstReadCpuPerByte(server, small));
    note(`tiny frames run ${run}/${runs}: server CPU per byte received ${samples.large.at(-1)!.toFixed(2)} ns (1 MiB frames), ${samples.tinyText.at(-1)!.toFixed(2)} ns (one-byte TEXT), ${samples.tinyAlternating.at(-1)!.toFixed(2)} ns (one-byte TEXT and KEY in turn)`);
  }
  const text = join(dir, 'tiny-real-text');
  await writeRandomText(text, REAL_JOB_BYTES);
  const alone: number[] = [];
  const beside: number[] = [];
  try {
    const real = async (): Promise<number> => (await runProgram(client, [text, text, String(server.port)], { what: 'enc_client beside tiny-frame senders', context: () => server.stderr() })).seconds;
    await real();
    for (let run = 1; run <= runs; run++) {
      alone.push(await real());
      const senders = Array.from({ length: SENDERS }, () => tinySender(server.port, SENDER_BYTES_PER_SECOND));
      await new Promise((resolve) => setTimeout(resolve, 200));
      try {
        beside.push(await real());
      } finally {
        await Promise.all(senders.map((s) => s.stop()));
      }
      note(`real ${REAL_JOB_BYTES} B job run ${run}/${runs}: ${alone.at(-1)!.toFixed(3)} s alone, ${beside.at(-1)!.toFixed(3)} s beside ${SENDERS} one-byte-frame senders`);
    }
  } finally {
    rmSync(text, { force: true });
  }
  const m = { large: median(samples.large), tinyText: median(samples.tinyText), tinyAlternating: median(samples.tinyAlternating), firstRead: median(samples.firstRead) };
  const r2 = (x: number): number => Number(x.toFixed(2));
  return {
    runs,
    symbols: TINY_SYMBOLS,
    nsPerByte: { large: r2(m.large), tinyText: r2(m.tinyText), tinyAlternating: r2(m.tinyAlternating), firstRead: r2(m.firstRead) },
    ratio: { tinyText: r2(m.tinyText / m.large), tinyAlternating: r2(m.tinyAlternating / m.large), firstRead: r2(m.firstRead / m.large) },
    realJob: { aloneSeconds: r2(median(alone)), besideSeconds: r2(median(beside)), ratio: r2(median(beside) / median(alone)) },
  };
}

export function renderTinyFrames(t: TinyFramesResult): string {
  return [
    `tiny frames: server CPU per byte received (medians of ${t.runs}): ${t.nsPerByte.large} ns in 1 MiB frames (${LARGE_SYMBOLS >> 20} Mi symbols), ` +
      `${t.nsPerByte.tinyText} ns in one-byte TEXT frames (${t.symbols >> 20} Mi symbols: ${t.ratio.tinyText}x), ${t.nsPerByte.tinyAlternating} ns in one-byte TEXT and KEY in turn (${t.ratio.tinyAlternating}x), ` +
      `${t.nsPerByte.firstRead} ns for ${FIRST_READ_SYMBOLS} one-byte TEXT frames and their key in the first read, ${FIRST_READ_JOBS} jobs (${t.ratio.firstRead}x) (target at most 4x)`,
    `  a real ${REAL_JOB_BYTES / 1e6} MB job: ${t.realJob.aloneSeconds} s alone, ${t.realJob.besideSeconds} s beside ${SENDERS} connections sending one-byte frames at ${(SENDERS * SENDER_BYTES_PER_SECOND) / 1e6} MB/s in all: ${t.realJob.ratio}x (target at most 2x)`,
  ].join('\n');
}
