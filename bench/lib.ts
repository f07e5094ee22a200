// Helpers for bench/bench.ts: random inputs, timed child processes with their peak RSS,
// servers on free ports, and a /proc poller for the peak RSS of a process tree.
// Every child is started in its own process group, tracked, and killed on the way out.
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export const MIB = 1 << 20;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ ';

/** A failure worth a clear one-paragraph message rather than a stack trace. */
export class BenchError extends Error {}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

// ---------------------------------------------------------------------------------------
// Inputs

/**
 * Writes `symbols` random symbols (A-Z and space) and a newline to `path`, 8 MiB at a time:
 * random bytes mapped through a 256-entry table. 256 is not a multiple of 27, so the first
 * 13 symbols are a little likelier than the rest; the programs do not care.
 */
export async function writeRandomText(path: string, symbols: number): Promise<void> {
  const table = new Uint8Array(256);
  for (let i = 0; i < 256; i++) table[i] = ALPHABET.charCodeAt(i % ALPHABET.length);
  const chunk = Buffer.allocUnsafe(Math.max(1, Math.min(symbols, 8 * MIB)));
  const fd = openSync(path, 'w');
  try {
    for (let left = symbols; left > 0; ) {
      const n = Math.min(left, chunk.length);
      randomFillSync(chunk, 0, n);
      for (let i = 0; i < n; i++) chunk[i] = table[chunk[i]];
      writeAll(fd, chunk.subarray(0, n));
      left -= n;
      await new Promise((resolve) => setImmediate(resolve)); // let a Ctrl-C through
    }
    writeAll(fd, Buffer.from('\n'));
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, data: Buffer): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
}

// ---------------------------------------------------------------------------------------
// Children: tracked, each the leader of its own process group, so that one kill reaches a
// program together with whatever it started (/usr/bin/time's child, a server's workers).

const live = new Set<ChildProcess>();
let closed = false;

/**
 * The environment every measured program and `node -e 0` runs in: this one without
 * NODE_EXTRA_CA_CERTS. This machine sets it, and then every Node start reads a CA bundle
 * (`node -e 0` 65 ms against 26 ms); users' machines do not.
 */
export const CHILD_ENV: NodeJS.ProcessEnv = (() => {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
})();

/** Says so in the output, when the bench's own environment had it. */
export const ENVIRONMENT_NOTE =
  process.env.NODE_EXTRA_CA_CERTS === undefined
    ? 'every program and node -e 0 run in the environment the bench was given'
    : 'every program and node -e 0 run with NODE_EXTRA_CA_CERTS removed from the environment (as on users\' machines)';

export function spawnTracked(command: string, args: string[], stdio: StdioOptions): ChildProcess {
  // Once cleaning up has begun, nothing new may start and outlive it.
  if (closed) throw new BenchError(`not starting ${command}: shutting down`);
  const child = spawn(command, args, { stdio, detached: true, env: CHILD_ENV });
  live.add(child);
  const forget = (): void => void live.delete(child);
  child.once('exit', forget);
  child.once('error', forget);
  return child;
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals | 0): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false; // the group is gone
  }
}

/** SIGKILL to every running child but the servers (clients, keygen, cmp) and what it started. */
export function killClients(): void {
  closed = true;
  const serverPids = new Set([...servers].map((server) => server.child.pid));
  for (const child of live) if (!serverPids.has(child.pid)) signalGroup(child.pid, 'SIGKILL');
}

/** SIGKILL to the process group of every child still running; synchronous, for exits. */
export function killEverything(): void {
  closed = true;
  for (const child of live) signalGroup(child.pid, 'SIGKILL');
  for (const server of servers) signalGroup(server.child.pid, 'SIGKILL');
}

// ---------------------------------------------------------------------------------------
// Peak RSS

/** How the peak RSS of a client is measured: GNU time's %M, or polling /proc VmHWM. */
export let clientRssMethod: 'gnu-time' | 'vmhwm-poll' = 'vmhwm-poll';
let scratch = '';

/** Where runs may leave small files; and whether /usr/bin/time is GNU time with -f and -o. */
export function configure(tmp: string): void {
  scratch = tmp;
  const out = join(tmp, 'time-probe');
  const probe = spawnSync('/usr/bin/time', ['-f', '%M', '-o', out, 'true'], { stdio: 'ignore' });
  try {
    if (process.env.BENCH_NO_TIME !== '1' && probe.status === 0 && /^\d+\s*$/.test(readFileSync(out, 'utf8'))) clientRssMethod = 'gnu-time';
  } catch {
    // no GNU time: poll /proc
  } finally {
    rmSync(out, { force: true });
  }
}

interface Status {
  rssKiB: number;
  hwmKiB: number;
}

function readStatus(pid: number): Status | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) : 0;
  };
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

/** `root` and all its descendants, from the ppid field of /proc/[pid]/stat. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid);
    if (list) list.push(Number(name));
    else children.set(ppid, [Number(name)]);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]) ?? []));
  return tree;
}

/** User plus system time of `root` and its descendants so far (clock ticks of 1/100 s, as Linux reports them). */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks / 100;
}

/**
 * CPU time of `root` and its descendants so far, in nanoseconds: the scheduler's own count
 * (/proc/PID/task/TID/schedstat, user and system together), where /proc/PID/stat counts in
 * 10 ms ticks, too coarse for a job's hundred milliseconds. Threads that ended are not
 * counted, so it is for comparing a process's time before and after its work.
 */
export function treeCpuNanoseconds(root: number): number {
  let ns = 0;
  for (const pid of processTree(root)) {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // exited meanwhile
    }
    for (const tid of tasks) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // ended meanwhile
      }
    }
  }
  return ns;
}

/** Resets VmHWM to the current RSS (Linux 4.0+); false when not allowed. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * The largest RSS of any single process of a tree while running: polls VmRSS every
 * `everyMs`, and also VmHWM, which the kernel keeps exactly, after resetting it at start
 * (so a spike between two polls still counts). Looks for new processes every 10 polls.
 */
export class TreePeak {
  private timer: NodeJS.Timeout | null = null;
  private peakKiB = 0;
  private ticks = 0;
  /** pid → whether its VmHWM counts only from this measurement's start. */
  private pids = new Map<number, boolean>();

  constructor(
    private readonly root: number,
    private readonly everyMs = 20,
  ) {}

  start(): void {
    this.peakKiB = 0;
    this.ticks = 0;
    this.pids.clear();
    for (const pid of processTree(this.root)) this.pids.set(pid, resetPeak(pid));
    this.poll();
    this.timer = setInterval(() => this.poll(), this.everyMs);
  }

  /** Stops polling; the peak in KiB. */
  stop(): number {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.poll();
    return this.peakKiB;
  }

  private poll(): void {
    if (++this.ticks % 10 === 0) {
      // A process started since the last look: its whole life lies in this measurement.
      for (const pid of processTree(this.root)) if (!this.pids.has(pid)) this.pids.set(pid, true);
    }
    for (const [pid, hwmCounts] of this.pids) {
      const status = readStatus(pid);
      if (!status) {
        this.pids.delete(pid);
        continue;
      }
      this.peakKiB = Math.max(this.peakKiB, status.rssKiB, hwmCounts ? status.hwmKiB : 0);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Timed runs

export interface RunOptions {
  /** File that receives stdout; /dev/null when not given. */
  stdout?: string;
  /** Measure the peak RSS of the program. */
  rss?: boolean;
  /** Measure the CPU time of the program (with GNU time only). */
  cpu?: boolean;
  /** Names the run in an error message. */
  what?: string;
  /** More to say when the run fails, such as what the server logged. */
  context?: () => string;
}

export interface RunResult {
  /** From spawn to exit. */
  seconds: number;
  peakRssKiB: number | null;
  /** User and system time, when asked for and GNU time is there. */
  cpuSeconds: number | null;
}

let runCount = 0;

/** Runs a program to its end, stdin closed and stderr kept; throws BenchError unless it exits 0. */
export async function runProgram(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const what = options.what ?? [command, ...args].join(' ');
  const timeFile = join(scratch, `rss-${process.pid}-${++runCount}`);
  const viaTime = (options.rss === true || options.cpu === true) && clientRssMethod === 'gnu-time';
  const argv = viaTime ? ['/usr/bin/time', '-f', '%M %U %S', '-o', timeFile, command, ...args] : [command, ...args];

  const out = openSync(options.stdout ?? '/dev/null', 'w');
  let child: ChildProcess;
  let started: number;
  try {
    started = performance.now();
    child = spawnTracked(argv[0], argv.slice(1), ['ignore', out, 'pipe']);
  } finally {
    closeSync(out); // the child has its own copy
  }
  let ended = started;
  child.once('exit', () => (ended = performance.now()));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-16_384);
  });

  // Without GNU time, VmHWM read just before the exit, every 20 ms.
  let hwmKiB = 0;
  const poller =
    options.rss && !viaTime
      ? setInterval(() => (hwmKiB = Math.max(hwmKiB, readStatus(child.pid!)?.hwmKiB ?? 0)), 20)
      : null;

  let code: number | null;
  let signal: NodeJS.Signals | null;
  try {
    [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  } catch (err) {
    throw new BenchError(`${what}: could not start: ${(err as Error).message}`);
  } finally {
    if (poller) clearInterval(poller);
  }

  let timeReport = '';
  if (viaTime) {
    try {
      timeReport = readFileSync(timeFile, 'utf8');
    } catch {
      // time itself failed; stderr says why
    }
    rmSync(timeFile, { force: true });
  }
  if (code !== 0) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    // GNU time repeats a non-zero status ("Command exited with ..."); a signal is worth saying.
    const timeSays = timeReport.split('\n').filter((line) => line && !TIME_LINE.test(line) && !/exited with/.test(line));
    let message = `${what} ${how}`;
    if (stderr.trim()) message += `; its stderr:\n${indent(stderr)}`;
    if (timeSays.length) message += `\n  /usr/bin/time: ${timeSays.join('; ')}`;
    const more = options.context?.().trim();
    if (more) message += `\n${more}`;
    throw new BenchError(message);
  }

  let peakRssKiB: number | null = null;
  let cpuSeconds: number | null = null;
  if (viaTime) {
    const line = timeReport.split('\n').filter((text) => TIME_LINE.test(text)).at(-1);
    const [rss, user, system] = line ? line.split(' ').map(Number) : [];
    if (options.rss && rss !== undefined) peakRssKiB = rss;
    if (options.cpu && user !== undefined && system !== undefined) cpuSeconds = user + system;
  } else if (options.rss) {
    peakRssKiB = hwmKiB || null;
  }
  return { seconds: (ended - started) / 1000, peakRssKiB, cpuSeconds };
}

/** GNU time's line, as runProgram asks for it: peak RSS in KiB, user and system seconds. */
const TIME_LINE = /^\d+ [\d.]+ [\d.]+$/;

/** Runs `cmp` on two files (streaming, in constant memory); throws BenchError when they differ. */
export async function compareFiles(expected: string, actual: string, what: string): Promise<void> {
  const child = spawnTracked('cmp', [expected, actual], ['ignore', 'pipe', 'pipe']);
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new BenchError(`${what}: ${output.trim() || `cmp exited with code ${code}`}`);
}

// ---------------------------------------------------------------------------------------
// Servers

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy(); // an empty connection: the servers drop it without a word
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const servers = new Set<Server>();

/** Stops every server started and not yet stopped, each as Server.stop does. */
export async function stopServers(): Promise<void> {
  await Promise.allSettled([...servers].map((server) => server.stop()));
}

export class Server {
  private log = '';
  private readonly exited: Promise<[number | null, NodeJS.Signals | null]>;

  private constructor(
    readonly name: string,
    readonly port: number,
    readonly child: ChildProcess,
  ) {
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.log = (this.log + chunk).slice(-16_384);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve([code, signal]));
      child.once('error', () => resolve([null, null]));
    });
    servers.add(this);
  }

  /** What the server has written to stderr, as a paragraph for error messages. */
  stderr(): string {
    return this.log.trim() ? `  ${this.name} logged:\n${indent(this.log)}` : '';
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Starts `program ...args PORT` on a free port and resolves once the port accepts connections. */
  static async start(program: string, name: string, args: string[] = []): Promise<Server> {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const server = new Server(name, port, spawnTracked(program, [...args, String(port)], ['ignore', 'ignore', 'pipe']));
      let gone = false;
      void server.exited.then(() => (gone = true));
      const deadline = Date.now() + 15_000;
      // Poll the port: readiness is a connection accepted, not a guessed delay.
      while (!gone && !(await accepts(port))) {
        if (Date.now() > deadline) {
          await server.stop();
          throw new BenchError(`${name} did not listen on port ${port} within 15 s\n${server.stderr()}`);
        }
        await wait(10);
      }
      if (!gone) return server;
      await server.stop();
      // Someone else may have taken the port between freePort() and the server's listen.
      if (attempt < 3 && /in use/.test(server.log)) continue;
      throw new BenchError(`${name} exited before listening on port ${port}\n${server.stderr()}`);
    }
  }

  /** SIGTERM to the main process, wait for it, then make sure no worker is left. */
  async stop(): Promise<void> {
    const pid = this.child.pid;
    if (this.child.exitCode === null && this.child.signalCode === null && pid !== undefined) {
      this.child.kill('SIGTERM');
      const timedOut = await Promise.race([this.exited.then(() => false), wait(15_000).then(() => true)]);
      if (timedOut) {
        process.stderr.write(`bench: ${this.name} did not stop within 15 s of SIGTERM; killing it\n`);
        signalGroup(pid, 'SIGKILL');
        await this.exited;
      }
    }
    // Workers leave when the main process does; give them a moment, then insist.
    for (let i = 0; i < 100 && signalGroup(pid, 0); i++) await wait(20);
    if (signalGroup(pid, 0)) {
      process.stderr.write(`bench: ${this.name}'s workers outlived it; killing them\n`);
      signalGroup(pid, 'SIGKILL');
    }
    servers.delete(this);
  }
}

/** As many clients at once as a server has workers by default: each worker takes one (they accept in turn). */
const WARM_CLIENTS = 5;

/** Unmeasured: `program args` run WARM_CLIENTS times at once against `server`, so that every worker has served such a job. */
export async function warmUp(server: Server, program: string, args: string[], what: string): Promise<void> {
  await Promise.all(
    Array.from({ length: WARM_CLIENTS }, (_, i) => runProgram(program, args, { what: `${what} (warm-up ${i + 1})`, context: () => server.stderr() })),
  );
}

// ---------------------------------------------------------------------------------------
// The C reference

/**
 * Builds the streaming C reference (otp_ref.c) into `dir` with `cc -O2`; the binary's
 * path, or null with the reason when there is no cc or no source.
 */
export function buildReference(source: string, dir: string): { binary: string | null; why: string } {
  try {
    readFileSync(source);
  } catch {
    return { binary: null, why: `no C reference source at ${source}` };
  }
  const binary = join(dir, 'otp_ref');
  const built = spawnSync('cc', ['-O2', '-o', binary, source], { encoding: 'utf8' });
  if (built.error) return { binary: null, why: `no C compiler (cc: ${(built.error as NodeJS.ErrnoException).code ?? built.error.message})` };
  if (built.status !== 0) return { binary: null, why: `cc failed on ${source}: ${built.stderr.trim().split('\n')[0]}` };
  return { binary, why: `built ${source} with cc -O2` };
}
