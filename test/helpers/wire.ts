// Raw-socket clients and process probes for the server robustness tests: frames built by
// hand, a connection that sends bytes and collects every frame the server answers until
// it closes, an independent mod-27 model, and counts of workers, descriptors and memory.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD, MAX_PAYLOAD, PROTOCOL_VERSION, Role, type Frame } from '../../src/protocol/frames.js';
import { bin } from './programs.js';

/** The 27 symbols, spelled out so that the tests do not lean on src/cipher/alphabet.ts. */
export const ABC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ ';

/** One frame as bytes; `length` overrides the length field (a lie about the payload). */
export function frame(type: number, payload: Buffer | string = Buffer.alloc(0), length?: number): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const header = Buffer.alloc(5);
  header[0] = type;
  header.writeUInt32BE(length ?? body.length, 1);
  return Buffer.concat([header, body]);
}

export function hello(role: number = Role.ENCRYPT, version: number = PROTOCOL_VERSION): Buffer {
  return frame(FrameType.HELLO, Buffer.from([version, role]));
}

/** A whole, valid job: HELLO, one TEXT, one KEY, END. */
export function job(text: string, key: string, role: number = Role.ENCRYPT): Buffer {
  return Buffer.concat([hello(role), frame(FrameType.TEXT, text), frame(FrameType.KEY, key), frame(FrameType.END)]);
}

/** The cipher, computed here independently of src: enc (p + k) mod 27, dec (c - k) mod 27. */
export function model(direction: 'encrypt' | 'decrypt', text: string, key: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const p = ABC.indexOf(text[i]);
    const k = ABC.indexOf(key[i]);
    if (p < 0 || k < 0) throw new Error(`model: not a symbol at ${i}`);
    out += ABC[direction === 'encrypt' ? (p + k) % 27 : (p - k + 27) % 27];
  }
  return out;
}

/** n random symbols (not uniform: fine for tests, which compare with the model). */
export function randomSymbols(n: number): string {
  const bytes = randomBytes(n);
  for (let i = 0; i < n; i++) bytes[i] = ABC.charCodeAt(bytes[i] % 27);
  return bytes.toString('latin1');
}

export interface Reply {
  /** Every byte the server sent. */
  bytes: Buffer;
  /** Those bytes as frames. */
  frames: Frame[];
  /** The bytes were not a whole number of well-formed frames. */
  malformed: boolean;
  /** The server half-closed (FIN) its side before we closed ours. */
  endedByServer: boolean;
  /** A socket error seen on the way (ECONNRESET, EPIPE), if any. */
  error: string | null;
  /** Our side's port: the server logs its peer as 127.0.0.1:PORT. */
  localPort: number;
  /** From connecting to the server's FIN (or to the close, without one). */
  ms: number;
}

export interface ExchangeOptions {
  host?: string;
  /**
   * After writing: 'end' half-closes (the default); 'hold' leaves the connection open and
   * silent; 'destroy' closes it at once and resolves without waiting for the server.
   */
  after?: 'end' | 'hold' | 'destroy';
  /** Give up (destroy, reject) after this long; default 10 s. */
  timeoutMs?: number;
  /** Called once connected, before anything is written. */
  onConnect?: (socket: import('node:net').Socket) => void;
}

/**
 * A server's byte stream as the frames it was sent in, read here with a plain loop of the
 * test's own (the tests' oracle: the project's FrameDecoder joins small parts, by design);
 * `malformed` when a length is over its limit or the bytes stop inside a frame.
 */
export async function decodeFrames(bytes: Buffer): Promise<{ frames: Frame[]; malformed: boolean }> {
  const frames: Frame[] = [];
  for (let at = 0; at < bytes.length; ) {
    if (bytes.length - at < HEADER_SIZE) return { frames, malformed: true };
    const type = bytes[at];
    const length = bytes.readUInt32BE(at + 1);
    const limit = type === FrameType.TEXT || type === FrameType.KEY || type === FrameType.RESULT ? MAX_PAYLOAD : MAX_CONTROL_PAYLOAD;
    if (length > limit || bytes.length - at - HEADER_SIZE < length) return { frames, malformed: true };
    frames.push({ type, payload: Buffer.from(bytes.subarray(at + HEADER_SIZE, at + HEADER_SIZE + length)) });
    at += HEADER_SIZE + length;
  }
  return { frames, malformed: false };
}

/**
 * Connects, writes `chunks` (with a pause for the event loop between them), half-closes
 * unless told not to, and collects what the server sends until the connection closes.
 * When the server half-closes, we close our side at once.
 */
export function exchange(port: number, chunks: Buffer | Buffer[], options: ExchangeOptions = {}): Promise<Reply> {
  const list = Array.isArray(chunks) ? chunks : [chunks];
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect({ port, host: options.host ?? '127.0.0.1' });
    const received: Buffer[] = [];
    let endedByServer = false;
    let error: string | null = null;
    let localPort = 0;
    let ms = -1;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`port ${port}: the server did not close within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', async () => {
      localPort = socket.localPort ?? 0;
      options.onConnect?.(socket);
      for (const chunk of list) {
        if (socket.destroyed) return;
        socket.write(chunk);
        await new Promise((r) => setImmediate(r));
      }
      if (socket.destroyed) return;
      if (options.after === 'destroy') socket.destroy();
      else if (options.after !== 'hold') socket.end();
    });
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('end', () => {
      endedByServer = true;
      ms = Date.now() - started;
      socket.end();
      socket.destroy();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      if (ms < 0) ms = Date.now() - started;
      const bytes = Buffer.concat(received);
      decodeFrames(bytes).then(({ frames, malformed }) =>
        resolve({ bytes, frames, malformed, endedByServer, error, localPort, ms }),
      );
    });
  });
}

/** The symbols of a reply's RESULT frames. */
export function resultText(reply: Reply): string {
  return Buffer.concat(reply.frames.filter((f) => f.type === FrameType.RESULT).map((f) => f.payload)).toString('latin1');
}

/** The reply's frame types, for messages: e.g. [5, 6]. */
export function frameTypes(reply: Reply): number[] {
  return reply.frames.map((f) => f.type);
}

/** The code of the reply's last frame when it is an ERROR; null otherwise. */
export function errorCode(reply: Reply): number | null {
  const last = reply.frames.at(-1);
  return last && last.type === FrameType.ERROR && last.payload.length > 0 ? last.payload[0] : null;
}

/** A tiny valid job over a raw socket; resolves with the result symbols, rejects on anything else. */
export async function rawRoundTrip(port: number, length = 8, direction: 'encrypt' | 'decrypt' = 'encrypt'): Promise<void> {
  const text = randomSymbols(length);
  const key = randomSymbols(length);
  const reply = await exchange(port, job(text, key, direction === 'encrypt' ? Role.ENCRYPT : Role.DECRYPT));
  const types = frameTypes(reply);
  if (reply.malformed || types.at(-1) !== FrameType.DONE || resultText(reply) !== model(direction, text, key)) {
    throw new Error(`raw round trip on port ${port} failed: frames ${JSON.stringify(types)}`);
  }
}

/** Lines of a server's stderr that name the peer 127.0.0.1:PORT. */
export function linesFor(stderr: string, localPort: number): string[] {
  return stderr.split('\n').filter((line) => line.includes(`127.0.0.1:${localPort}:`));
}

/** Polls `condition` every 25 ms until it holds; rejects with `what` after `timeoutMs`. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The pids whose parent is `pid` (pgrep -P). */
export function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** The pids pgrep -x finds for a process name. */
export function pgrepExact(name: string): number[] {
  try {
    return execFileSync('pgrep', ['-x', name], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The process's state letter from /proc (R, S, Z, ...), or null when it is gone. */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return null;
  }
}

/** Open file descriptors of a process. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function socketLinks(pid: number): Set<string> {
  const links = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (link.startsWith('socket:')) links.add(link);
    } catch {
      // closed meanwhile
    }
  }
  return links;
}

/**
 * Waits until a server's pool is whole and quiet: `workers` workers, each holding the
 * listening socket the main process made (a worker that has not got it yet gains a
 * descriptor later), and their descriptor count unchanged over a few polls (a new Node
 * line opens and closes files of its own at start). Counts taken before that drift.
 */
export async function waitForSettledPool(pid: number, workers: number, timeoutMs = 30_000): Promise<void> {
  let last = -1;
  let steady = 0;
  await waitUntil(
    () => {
      const children = childrenOf(pid);
      const main = socketLinks(pid);
      const listening = children.length === workers && children.every((w) => [...socketLinks(w)].some((link) => main.has(link)));
      const fds = serverFootprint(pid).workerFds;
      steady = listening && fds === last ? steady + 1 : 0;
      last = fds;
      return steady >= 4;
    },
    timeoutMs,
    `${workers} workers listening, their descriptors steady`,
  );
}

/** Resident memory of a process, in KiB. */
export function rssKb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : 0;
}

/** Descriptors and memory of a server: its main process and its workers. */
export function serverFootprint(pid: number): { mainFds: number; workerFds: number; mainRssKb: number; workerRssKb: number; workers: number } {
  const workers = childrenOf(pid);
  let workerFds = 0;
  let workerRssKb = 0;
  for (const w of workers) {
    try {
      workerFds += fdCount(w);
      workerRssKb += rssKb(w);
    } catch {
      // a worker that went away between pgrep and /proc
    }
  }
  return { mainFds: fdCount(pid), workerFds, mainRssKb: rssKb(pid), workerRssKb, workers: workers.length };
}

export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.setTimeout(2000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A fresh temporary directory, removed when the test ends (unique per process, unlike t.testdir). */
export function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'otp-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A job of `symbols` random symbols in files TEXT and KEY (each with its final newline) in
 * a fresh temporary directory, and enc_client's expected output. A long one (over one
 * socket read) takes a job slot, where a tiny one is answered whole from its first read.
 */
export function jobFiles(t: { teardown(fn: () => void): void }, symbols: number): { text: string; key: string; expected: string } {
  const dir = tempDir(t);
  const text = randomSymbols(symbols);
  const key = randomSymbols(symbols);
  writeFileSync(join(dir, 'text'), `${text}\n`);
  writeFileSync(join(dir, 'key'), `${key}\n`);
  return { text: join(dir, 'text'), key: join(dir, 'key'), expected: `${model('encrypt', text, key)}\n` };
}

/**
 * A raw connection kept under the test's control: nothing is closed for it. `ended`
 * resolves (with ms since connecting) when the server half-closes, `closed` when the
 * socket closes; the socket stays half-open after the server's FIN.
 */
export class RawConnection {
  readonly socket: import('node:net').Socket;
  readonly started = Date.now();
  readonly connected: Promise<void>;
  readonly ended: Promise<number>;
  readonly closed: Promise<number>;
  error: string | null = null;
  private readonly _received: Buffer[] = [];
  private _localPort = 0;

  constructor(port: number, host = '127.0.0.1') {
    this.socket = connect({ port, host, allowHalfOpen: true });
    this.socket.on('data', (chunk: Buffer) => this._received.push(chunk));
    this.socket.on('error', (err: NodeJS.ErrnoException) => (this.error = err.code ?? err.message));
    this.connected = once(this.socket, 'connect').then(() => void (this._localPort = this.socket.localPort ?? 0));
    this.ended = new Promise((resolve) => this.socket.once('end', () => resolve(Date.now() - this.started)));
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve(Date.now() - this.started)));
  }

  /** Our side's port, kept from the connect (a destroyed socket forgets it). */
  get localPort(): number {
    return this._localPort;
  }

  bytes(): Buffer {
    return Buffer.concat(this._received);
  }

  frames(): Promise<{ frames: Frame[]; malformed: boolean }> {
    return decodeFrames(this.bytes());
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Runs a program like programs.ts's run, but kills it (SIGKILL) after `timeoutMs`: a hang fails fast. */
export async function runWithin(
  name: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: Buffer; stderr: string; ms: number; timedOut: boolean }> {
  const started = Date.now();
  const child = spawn(bin(name), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = (): void => void child.kill('SIGKILL');
  process.on('exit', kill);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, timeoutMs);
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = await once(child, 'close');
  clearTimeout(timer);
  process.off('exit', kill);
  return { code: code as number | null, stdout: Buffer.concat(stdout), stderr, ms: Date.now() - started, timedOut };
}
