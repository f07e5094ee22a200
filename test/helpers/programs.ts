// Runs the built programs for end-to-end tests: free ports, waiting for a port, no process left behind.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { WORKER_SOCKET_FD } from '../../src/server/messages.js';

export const ROOT = join(__dirname, '..', '..');
export const FIXTURES = join(ROOT, 'test', 'fixtures');

export function bin(name: string): string {
  return join(ROOT, name);
}

/**
 * Writes the built program `name` to `path` (a new file moved into place, as ./compileall
 * replaces it), with JavaScript run before it (`before`, after its "use strict") or after it.
 * In a worker OTP_WORKER is 1: `process.env.OTP_WORKER === '1' && process.exit(3)` makes
 * a program whose workers cannot start.
 */
export function writeProgram(path: string, name: string, code: { before?: string; after?: string }): void {
  const strict = '"use strict";';
  const built = readFileSync(bin(name), 'utf8');
  if (!built.includes(strict)) throw new Error(`${name} has no "use strict" to put code after`);
  const at = built.indexOf(strict) + strict.length;
  const next = `${path}.next`;
  // Lines of their own: an error's report quotes its line, and the bundle's is one long line.
  writeFileSync(next, `${built.slice(0, at)}\n${code.before ?? ''};\n${built.slice(at)}\n;${code.after ?? ''}\n`, { mode: 0o755 });
  renameSync(next, path);
}

const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of started) child.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Resolves once something accepts connections on host:port; rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 30_000, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, host);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function links(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return ''; // closed meanwhile
      }
    });
  } catch {
    return []; // gone
  }
}

/**
 * Resolves once a worker of the server `pid` listens: its main process holds the socket
 * the workers inherit only once one of them has reported ready and sent a copy back.
 */
export async function waitForWorker(pid: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let workers: number[] = [];
    try {
      workers = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
    } catch {
      // none yet (pgrep exits 1)
    }
    const main = new Set(links(pid));
    const inherited = workers.map((w) => {
      try {
        return readlinkSync(`/proc/${w}/fd/${WORKER_SOCKET_FD}`);
      } catch {
        return null;
      }
    });
    if (inherited.some((link) => link !== null && main.has(link))) return;
    if (Date.now() > deadline) throw new Error(`no worker of server ${pid} listens after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface Server {
  port: number;
  child: ChildProcess;
  /** All the server has written to stderr so far. */
  stderr(): string;
  /** SIGTERM, then waits for the exit; returns how the process ended. */
  stop(signal?: NodeJS.Signals): Promise<Ending>;
}

/** How a process ended: its exit code, or the signal that killed it. */
export interface Ending {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Asserts how a server ended after `signal` (SIGTERM or SIGINT) once its jobs were done.
 * The one place that says it: after draining, a server dies by that same signal, so that
 * shells and scripts see it (SPEC.md), never by an exit code.
 */
export function expectStoppedBySignal(t: { same(found: unknown, wanted: unknown, message: string): boolean }, ending: Ending, signal: NodeJS.Signals, what: string): void {
  t.same(ending, { code: null, signal }, `${what} stops on ${signal}: dies by it once drained`);
}

/**
 * Starts `name` (enc_server or dec_server) and waits until it listens: on a free port of
 * 127.0.0.1, or where `at` says (`host` is passed on as --host).
 */
export async function startServer(
  name: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
  at: {
    host?: string;
    port?: number;
    /** a command the server runs under, e.g. prlimit */
    under?: string[];
    /** the executable, when not the built one (a copy to replace, as a reload test does) */
    program?: string;
  } = {},
): Promise<Server> {
  const port = at.port ?? (await freePort());
  const host = at.host ?? '127.0.0.1';
  const [command, ...rest] = [...(at.under ?? []), at.program ?? bin(name), String(port), ...(at.host ? ['--host', at.host] : []), ...args];
  const child = spawn(command, rest, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  started.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(child, 'exit');
  void exited.then(() => started.delete(child));
  // The port accepts as soon as the main process listens; the server serves once a worker
  // is up, a forked Node process, which a loaded machine starts slowly.
  await Promise.race([
    waitForPort(port, 30_000, host).then(() => waitForWorker(child.pid!, 30_000)),
    exited.then(([code]) => {
      throw new Error(`${name} exited with ${code} before listening: ${stderr}`);
    }),
  ]).catch((err: unknown) => {
    child.kill('SIGKILL'); // its workers leave on their own once it is gone
    throw err;
  });
  return {
    port,
    child,
    stderr: () => stderr,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const [code, how] = await exited;
      return { code: code as number | null, signal: how as NodeJS.Signals | null };
    },
  };
}

export interface Result {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a program to its end; `stdin` is written to it when given, `env` added to the environment. */
export async function run(
  name: string,
  args: string[],
  options: { stdin?: Buffer | string; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Result> {
  const child = spawn(bin(name), args, {
    stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    cwd: options.cwd,
    env: options.env && { ...process.env, ...options.env },
  });
  started.add(child);
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  if (options.stdin !== undefined) child.stdin!.on('error', () => {}).end(options.stdin);
  const [code] = await once(child, 'close');
  started.delete(child);
  return { code: code as number | null, stdout: Buffer.concat(stdout), stderr };
}
