// The command line shared by enc_server and dec_server; the same file runs their workers.
import type { Direction } from '../cipher/alphabet.js';
import { fail, guard, UserError } from '../cli/errors.js';
import { parseCommandLine, parseCount, parsePort } from '../cli/command-line.js';
import { DEFAULT_CONNECTIONS_PER_WORKER, DEFAULT_JOBS_PER_WORKER, MAX_CONNECTIONS_PER_WORKER, MAX_JOBS_PER_WORKER } from '../protocol/capacity.js';
import { readTimeouts } from '../cli/environment.js';
import { invokedName, nameServerProcess } from '../cli/process-name.js';
import { SERVER_TLS_OPTIONS, serverTls } from '../tls/options.js';
import { VERSION } from '../cli/version.js';
import { activatedSocket } from './activation.js';
import type * as SupervisorModule from './supervisor.js';
import type * as WorkerModule from './worker.js';

/** `name` is the program's own; its messages, logs, --help and --version use the name it was invoked as (a symlink otp_enc_d). */
export function serverMain(name: string, direction: Direction): void {
  const program = invokedName(name);
  guard(program);
  const isWorker = process.env.OTP_WORKER === '1' && process.send !== undefined;
  const [verb, client] = direction === 'encrypt' ? ['Encrypts', 'enc_client'] : ['Decrypts', 'dec_client'];
  const { values, positionals } = parseCommandLine(
    {
      program,
      synopsis: 'PORT',
      about:
        `${verb} for ${client}s connecting to PORT, until stopped by SIGTERM or SIGINT (after\n` +
        `the jobs in flight, within a grace time); SIGHUP reloads: new workers from the program\n` +
        `on disk take the new jobs, the old ones finish theirs. Under systemd socket activation\n` +
        `(LISTEN_PID, LISTEN_FDS=1) it serves the socket passed, and PORT may be left out.\n` +
        `Worker processes accept the connections and serve many at once each; a full server\n` +
        `sheds the connections making the least progress, or answers BUSY.\n` +
        `Environment, in milliseconds (1 to 2147483647): OTP_HANDSHAKE_TIMEOUT_MS (default\n` +
        `5000), OTP_IDLE_TIMEOUT_MS (30000), OTP_SHUTDOWN_GRACE_MS (10000), OTP_WATCHDOG_MS\n` +
        `(5000), OTP_START_TIMEOUT_MS (10000).\n` +
        `Exit status: stopped by SIGTERM or SIGINT, it dies by that signal (143, 130);\n` +
        `1 bad usage or cannot listen.`,
      positionals: ['PORT'],
      optionalPositionals: 1,
      options: {
        host: { type: 'string', arg: 'ADDR', help: 'the address to listen on (default 127.0.0.1, loopback only)' },
        workers: { type: 'string', arg: 'N', help: 'how many worker processes serve (1 to 64, default 5)' },
        jobs: {
          type: 'string',
          arg: 'N',
          help: `how many jobs each worker runs at once (1 to ${MAX_JOBS_PER_WORKER}, default ${DEFAULT_JOBS_PER_WORKER})`,
        },
        connections: {
          type: 'string',
          arg: 'N',
          help: `how many connections each worker holds, jobs included (1 to ${MAX_CONNECTIONS_PER_WORKER}, default ${DEFAULT_CONNECTIONS_PER_WORKER})`,
        },
        verbose: { type: 'boolean', short: 'v', help: 'log one line per connection on stderr' },
        'proxy-protocol': {
          type: 'boolean',
          help: 'every connection begins with a PROXY protocol header (v1 or v2), as a load balancer sends it',
        },
        ...SERVER_TLS_OPTIONS,
      },
    },
    VERSION,
  );
  try {
    const count = (name: string, fallback: number, max: number): number => {
      const text = values[name] as string | undefined;
      return text === undefined ? fallback : parseCount(`--${name}`, text, 1, max);
    };
    const host = (values.host as string | undefined) ?? '127.0.0.1';
    if (host === '') throw new UserError(`--host '' is not an address: give one, such as 127.0.0.1 or ::1`);
    const workers = count('workers', 5, 64);
    const caps = { jobs: count('jobs', DEFAULT_JOBS_PER_WORKER, MAX_JOBS_PER_WORKER), connections: count('connections', DEFAULT_CONNECTIONS_PER_WORKER, MAX_CONNECTIONS_PER_WORKER) };
    let timeouts;
    try {
      timeouts = readTimeouts(process.env);
    } catch (err) {
      throw new UserError((err as Error).message);
    }
    const fd = isWorker ? null : activatedSocket();
    if (!isWorker && fd === null && positionals.length === 0) {
      throw new UserError('PORT is missing (it may be left out only when systemd passes the listening socket)');
    }
    const port = positionals.length > 0 ? parsePort(positionals[0]) : null;
    // The main process checked the command line before it forked this worker.
    nameServerProcess(program, port ?? 'socket', isWorker ? 'worker' : 'main');
    if (isWorker) {
      const preamble = { proxyProtocol: values['proxy-protocol'] === true, tls: serverTls(values) };
      // Loaded by a worker only: its modules (node:tls, the job's) are no time the main process spends before it listens.
      const { runWorker } = require('./worker.js') as typeof WorkerModule;
      return runWorker({ program, direction, caps, timeouts, verbose: values.verbose === true, preamble });
    }
    const listen = fd !== null ? { fd } : { host, port: port! };
    // The TLS files are loaded once the port listens (runSupervisor), and again at each reload.
    // Loaded once the command line is good, as the worker's modules are: not for --help or --version.
    const { runSupervisor } = require('./supervisor.js') as typeof SupervisorModule;
    void runSupervisor({ program, listen, workers, timeouts, recheck: () => void serverTls(values) });
  } catch (err) {
    fail(program, err);
  }
}
