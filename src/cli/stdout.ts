// A program's stdout: a few lines (--help, --version) written straight to the descriptor, its output through process.stdout with the errors handled.
import { writeAll } from './direct-write.js';
import { EXIT_OK, fail, outputError } from './errors.js';

let guarded = false;

/**
 * process.stdout, with what its errors mean: a reader that went away (`| head`) ends the
 * program quietly, anything else is one line and exit 1. Node makes the stream on first
 * use, and for a pipe or a terminal that loads node:net and node:stream, so a program
 * asks for it only when it has output to stream.
 */
export function stdout(program: string): NodeJS.WriteStream {
  if (!guarded) {
    guarded = true;
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      outputFailed(program, err);
      process.exit(EXIT_OK);
    });
  }
  return process.stdout;
}

/** Writes `text` to stdout and exits 0 (--help, --version); a reader that went away ends the program quietly, as it does for the output. */
export function printAndExit(program: string, text: string): never {
  try {
    writeAll(1, text);
  } catch (err) {
    outputFailed(program, err as NodeJS.ErrnoException);
  }
  process.exit(EXIT_OK);
}

/** A write to stdout failed: a reader that went away (`| head`, EPIPE) is only the end of the output, and returns; anything else is one line and exit 1. */
export function outputFailed(program: string, err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE') fail(program, outputError(err));
}
