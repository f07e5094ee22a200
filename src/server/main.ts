// The command line shared by enc_server and dec_server; the same file runs their workers.
import type { Direction } from '../alphabet.js';
import { fail, guard, parseCommandLine, parseCount, parsePort, UserError } from '../cli.js';
import {
  DEFAULT_CONNECTIONS_PER_WORKER,
  DEFAULT_JOBS_PER_WORKER,
  MAX_CONNECTIONS_PER_WORKER,
  MAX_JOBS_PER_WORKER,
  readTimeouts,
} from '../protocol.js';
import { VERSION } from '../version.js';
import { runSupervisor } from './supervisor.js';
import { runWorker } from './worker.js';

export function serverMain(program: string, direction: Direction): void {
  guard(program);
  const [verb, client] = direction === 'encrypt' ? ['Encrypts', 'enc_client'] : ['Decrypts', 'dec_client'];
  const { values, positionals } = parseCommandLine(
    {
      program,
      synopsis: 'PORT',
      about:
        `${verb} for ${client}s connecting to PORT, until stopped by SIGTERM or SIGINT (after\n` +
        `the jobs in flight, within a grace time); SIGHUP is ignored. Worker processes accept\n` +
        `the connections and serve many at once each; a full server sheds the connections\n` +
        `making the least progress, or answers BUSY.`,
      positionals: ['PORT'],
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
    const port = parsePort(positionals[0]);
    const workers = count('workers', 5, 64);
    const caps = { jobs: count('jobs', DEFAULT_JOBS_PER_WORKER, MAX_JOBS_PER_WORKER), connections: count('connections', DEFAULT_CONNECTIONS_PER_WORKER, MAX_CONNECTIONS_PER_WORKER) };
    let timeouts;
    try {
      timeouts = readTimeouts(process.env);
    } catch (err) {
      throw new UserError((err as Error).message);
    }
    if (process.env.OTP_WORKER === '1' && process.send) {
      return runWorker({ program, direction, caps, timeouts, verbose: values.verbose === true });
    }
    void runSupervisor({ program, host, port, workers, timeouts });
  } catch (err) {
    fail(program, err);
  }
}
