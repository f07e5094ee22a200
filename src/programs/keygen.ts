// keygen: writes KEYLENGTH random alphabet symbols and a newline to stdout.
import { pipeline } from 'node:stream';
import { EXIT_OK, fail, guard, parseCommandLine, UserError } from '../cli.js';
import { RandomSymbols } from '../streams/random-symbols.js';
import { VERSION } from '../version.js';

const program = 'keygen';
guard(program);
const { positionals } = parseCommandLine(
  {
    program,
    synopsis: 'KEYLENGTH',
    about:
      'Writes KEYLENGTH random symbols (A-Z and space, each equally likely, from a\n' +
      'cryptographically secure source) and a newline to stdout.',
    positionals: ['KEYLENGTH'],
    options: {},
  },
  VERSION,
);
const length = /^\d+$/.test(positionals[0]) ? Number(positionals[0]) : NaN;
if (!Number.isSafeInteger(length)) {
  fail(program, new UserError(`'${positionals[0]}' is not a key length: give a whole number of symbols`));
}
pipeline(new RandomSymbols(length), process.stdout, (err) => {
  if (err && (err as NodeJS.ErrnoException).code !== 'EPIPE') fail(program, err);
  process.exitCode = EXIT_OK;
});
