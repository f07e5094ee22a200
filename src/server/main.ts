// The command line shared by enc_server and dec_server; the same file runs their workers.
import type { Direction } from '../alphabet.js';
import { fail, guard, parseCommandLine, parsePort, UserError } from '../cli.js';
import { VERSION } from '../version.js';
import { runServer } from './server.js';
import { runWorker } from './worker.js';

export function serverMain(program: string, direction: Direction): void {
  guard(program);
  if (process.env.OTP_WORKER === '1' && process.send) return runWorker(direction);
  const [verb, client] = direction === 'encrypt' ? ['Encrypts', 'enc_client'] : ['Decrypts', 'dec_client'];
  const { values, positionals } = parseCommandLine(
    {
      program,
      synopsis: 'PORT',
      about:
        `${verb} for ${client}s connecting to PORT, until stopped by SIGTERM or SIGINT.\n` +
        `Serves several at once in worker processes; the rest wait their turn.`,
      positionals: ['PORT'],
      options: {
        host: { type: 'string', arg: 'ADDR', help: 'the address to listen on (default 127.0.0.1, loopback only)' },
        workers: { type: 'string', arg: 'N', help: 'how many clients to serve at once (default 5)' },
        verbose: { type: 'boolean', short: 'v', help: 'log one line per connection on stderr' },
      },
    },
    VERSION,
  );
  try {
    const workers = values.workers === undefined ? 5 : Number(values.workers);
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
      throw new UserError(`--workers '${values.workers}' is not a number from 1 to 64`);
    }
    runServer({
      program,
      direction,
      port: parsePort(positionals[0]),
      host: (values.host as string | undefined) ?? '127.0.0.1',
      workers,
      verbose: values.verbose === true,
    });
  } catch (err) {
    fail(program, err);
  }
}
