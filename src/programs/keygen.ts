// keygen: writes KEYLENGTH random alphabet symbols and a newline to stdout.
import { EXIT_OK, fail, guard, UserError } from '../cli/errors.js';
import { parseCommandLine } from '../cli/command-line.js';
import { invokedName } from '../cli/process-name.js';
import { outputFailed, stdout } from '../cli/stdout.js';
import { VERSION } from '../cli/version.js';
import type * as RandomSymbolsModule from '../keygen/random-symbols.js';

// Messages, --help and --version use the name it was invoked as.
const program = invokedName('keygen');
guard(program);
const { positionals } = parseCommandLine(
  {
    program,
    synopsis: 'KEYLENGTH',
    about:
      'Writes KEYLENGTH random symbols (A-Z and space, each equally likely, from a\n' +
      'cryptographically secure source) and a newline to stdout.\n' +
      'Exit status: 0 written (or the reader went away), 1 bad usage or the output\n' +
      'could not be written.',
    positionals: ['KEYLENGTH'],
    options: {},
  },
  VERSION,
);
if (!/^\d+$/.test(positionals[0])) {
  fail(program, new UserError(`'${positionals[0]}' is not a key length: give a whole number of symbols`));
}
const length = Number(positionals[0]);
if (!Number.isSafeInteger(length)) {
  fail(program, new UserError(`key length ${positionals[0]} is too large: the largest is ${Number.MAX_SAFE_INTEGER}`));
}
// Loaded once the command line is good: node:crypto and the kernels are no part of --help or --version.
const { RandomSymbols, writeRandomSymbols } = require('../keygen/random-symbols.js') as typeof RandomSymbolsModule;
writeRandomSymbols(new RandomSymbols(length), stdout(program), (err) => {
  if (err) outputFailed(program, err as NodeJS.ErrnoException);
  process.exitCode = EXIT_OK;
});
