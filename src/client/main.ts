// The command line shared by enc_client and dec_client.
import type { Direction } from '../alphabet.js';
import { fail, guard, parseCommandLine, parsePort } from '../cli.js';
import { CLIENT_TLS_OPTIONS, clientTls } from '../tls-options.js';
import { VERSION } from '../version.js';
import { runClient } from './client.js';

export function clientMain(program: string, direction: Direction): void {
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
        `Exit status: 0 done, 1 bad usage or input, 2 the server could not be used.`,
      positionals: [input, 'KEY', 'PORT'],
      options: {
        host: { type: 'string', arg: 'ADDR', help: "the server's address (default 127.0.0.1)" },
        progress: { type: 'boolean', help: 'show a progress meter on stderr (default: on a terminal, over 16 MiB)' },
        'no-progress': { type: 'boolean', help: 'never show the progress meter' },
        ...CLIENT_TLS_OPTIONS,
      },
    },
    VERSION,
  );
  try {
    runClient({
      program,
      direction,
      textPath: positionals[0],
      keyPath: positionals[1],
      port: parsePort(positionals[2]),
      host: (values.host as string | undefined) ?? '127.0.0.1',
      progress: values['no-progress'] ? false : values.progress ? true : undefined,
      tls: clientTls(values),
    });
  } catch (err) {
    fail(program, err);
  }
}
