// The command line shared by enc_client and dec_client.
import type { Direction } from '../cipher/alphabet.js';
import { fail, guard, UserError } from '../cli/errors.js';
import { parseCommandLine, parsePort } from '../cli/command-line.js';
import { CLIENT_TLS_OPTIONS, clientTls } from '../tls/options.js';
import { invokedName } from '../cli/process-name.js';
import { VERSION } from '../cli/version.js';
import type * as ClientModule from './client.js';

/** `name` is the program's own; its messages, --help and --version use the name it was invoked as (a symlink otp_enc). */
export function clientMain(name: string, direction: Direction): void {
  const program = invokedName(name);
  guard(program);
  const [input, verb, output, server] =
    direction === 'encrypt'
      ? ['PLAINTEXT', 'Encrypts', 'ciphertext', 'enc_server']
      : ['CIPHERTEXT', 'Decrypts', 'plaintext', 'dec_server'];
  const { values, positionals } = parseCommandLine(
    {
      program,
      synopsis: `${input} KEY PORT`,
      about:
        `${verb} the text in file ${input} with the key in file KEY, using the ${server}\n` +
        `listening on PORT, and writes the ${output} to stdout. ${input} may be - for stdin;\n` +
        `KEY may be any file or pipe (/dev/stdin, <(keygen N)) but not -.\n` +
        `Exit status: 0 done, 1 bad usage or input, 2 the server could not be used.\n` +
        `Environment: OTP_REPLY_TIMEOUT_MS, how long to wait for a silent server (default 30000)` +
        (direction === 'encrypt' ? `;\nOTP_LEDGER, the ledger of --no-reuse (default ~/.local/state/otp/ledger).` : '.'),
      positionals: [input, 'KEY', 'PORT'],
      options: {
        host: { type: 'string', arg: 'ADDR', help: "the server's address (default 127.0.0.1)" },
        progress: { type: 'boolean', help: 'show a progress meter on stderr (default: on a terminal, over 16 MiB)' },
        'no-progress': { type: 'boolean', help: 'never show the progress meter' },
        offset: { type: 'string', arg: 'N', help: 'use the key from symbol N on, counting from 0 (default 0)' },
        ...(direction === 'encrypt' && {
          'no-reuse': {
            type: 'boolean',
            help: 'use only key symbols no earlier --no-reuse job used, and record them in the ledger',
          },
        }),
        ...CLIENT_TLS_OPTIONS,
      },
    },
    VERSION,
  );
  try {
    const options: ClientModule.ClientOptions = {
      program,
      direction,
      textPath: positionals[0],
      keyPath: positionals[1],
      port: parsePort(positionals[2]),
      host: (values.host as string | undefined) ?? '127.0.0.1',
      progress: values['no-progress'] ? false : values.progress ? true : undefined,
      offset: values.offset === undefined ? null : parseOffset(values.offset as string),
      noReuse: values['no-reuse'] === true,
      tls: clientTls(values),
    };
    // Loaded once the command line is good: --help, --version and usage errors never
    // evaluate the job's modules (node:net, node:stream, the stages).
    const { runClient } = require('./client.js') as typeof ClientModule;
    runClient(options);
  } catch (err) {
    fail(program, err);
  }
}

function parseOffset(text: string): number {
  const offset = /^(0|[1-9]\d{0,14})$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(offset)) throw new UserError(`--offset '${text}' is not a key position: give a whole number from 0`);
  return offset;
}
