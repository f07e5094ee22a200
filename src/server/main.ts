// The command line shared by enc_server and dec_server; the same file runs their workers.
import type { Direction } from '../alphabet.js';
import { fail, guard, parseCommandLine, parsePort, UserError } from '../cli.js';
import { nameServerProcess } from '../process-name.js';
import { VERSION } from '../version.js';
import { runServer } from './server.js';
import { runWorker } from './worker.js';

export function serverMain(program: string, direction: Direction): void {
  guard(program);
  const isWorker = process.env.OTP_WORKER === '1' && process.send !== undefined;
  const [verb, client] = direction === 'encrypt' ? ['Encrypts', 'enc_client'] : ['Decrypts', 'dec_client'];
  const { values, positionals } = parseCommandLine(
    {
      program,
      synopsis: 'PORT',
      about:
        `${verb} for ${client}s connecting to PORT, until stopped by SIGTERM or SIGINT.\n` +
        `Serves several at once in worker processes; the rest wait their turn.\n` +
        `Environment, in milliseconds: OTP_HANDSHAKE_TIMEOUT_MS (default 5000),\n` +
        `OTP_IDLE_TIMEOUT_MS (30000), OTP_SHUTDOWN_GRACE_MS (10000).\n` +
        `Exit status: 0 stopped by SIGTERM or SIGINT, 1 bad usage or cannot listen\n` +
        `(or a second signal during shutdown).`,
      positionals: ['PORT'],
      options: {
        host: { type: 'string', arg: 'ADDR', help: 'the address to listen on (default 127.0.0.1, loopback only)' },
        workers: { type: 'string', arg: 'N', help: 'how many clients to serve at once, 1 to 64 (default 5)' },
        verbose: { type: 'boolean', short: 'v', help: 'log one line per connection on stderr' },
      },
    },
    VERSION,
  );
  try {
    const port = parsePort(positionals[0]);
    // The main process checked the command line before it forked this worker.
    nameServerProcess(program, port, isWorker ? 'worker' : 'main');
    if (isWorker) return runWorker(direction);
    const workers = values.workers === undefined ? 5 : Number(values.workers);
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
      throw new UserError(`--workers '${values.workers}' is not a number from 1 to 64`);
    }
    runServer({
      program,
      direction,
      port,
      host: (values.host as string | undefined) ?? '127.0.0.1',
      workers,
      verbose: values.verbose === true,
    });
  } catch (err) {
    fail(program, err);
  }
}
