// What every program does with an error: one line naming the program, the documented exit code, and never a stack trace.
import { writeAll } from './direct-write.js';
import { nameProcess } from './process-name.js';

export const EXIT_OK = 0;
/** Usage, unreadable or bad input, a server that cannot listen. */
export const EXIT_INPUT = 1;
/** A client cannot get its job done by a server. */
export const EXIT_SERVER = 2;

/** An error meant for the user: its message is the whole story, with no stack. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_INPUT,
  ) {
    super(message);
  }
}

/** An error as the user sees it: a UserError's own message and code; anything else, a system error or a bug, as its reason and exit 1. */
export function describeError(err: unknown): { message: string; exitCode: number } {
  if (err instanceof UserError) return { message: err.message, exitCode: err.exitCode };
  return { message: reason(err), exitCode: EXIT_INPUT };
}

export function fail(program: string, err: unknown): never {
  // No Node decoration and no stack: one line.
  const { message, exitCode } = describeError(err);
  try {
    writeAll(2, `${program}: error: ${message.split('\n')[0]}\n`);
  } catch {
    // stderr is gone: the exit code is all that is left to tell.
  }
  process.exit(exitCode);
}

/** The reason in a system error, without Node's decoration: 'no such file or directory'. */
export function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return (e?.code && SYSTEM_REASONS[e.code]) || undecorated(e?.message ?? String(err));
}

const SYSTEM_REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  ENAMETOOLONG: 'the file name is too long',
  ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'the file is too large',
  EROFS: 'read-only file system',
  EIO: 'input/output error',
  EBADF: 'the file descriptor is not open',
  ENXIO: 'no such device or address',
  ENOMEM: 'out of memory',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'broken pipe',
  ETIMEDOUT: 'timed out',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name cannot be resolved now',
  EAI_FAIL: 'the host name cannot be resolved',
  EADDRINUSE: 'the port is in use',
  EADDRNOTAVAIL: 'no such local address',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'the network is unreachable',
};

/**
 * A system error's message without Node's code and call: 'ENOSPC: no space left on
 * device, write' is 'no space left on device'. Any other message is kept as it is.
 */
function undecorated(message: string): string {
  const line = message.split('\n')[0];
  const system = /^E[A-Z0-9_]+: (.+?)(?:, [a-z_]+\b.*)?$/.exec(line);
  return system ? system[1] : line;
}

/**
 * Sets up what every program does on the way out: no stack trace ever reaches the user.
 * stdout's errors are handled where a program makes its stream (./stdout.ts).
 */
export function guard(program: string): void {
  // `program` is the name it was invoked as (a symlink otp_enc_d): the process goes by it,
  // for killall, and so do its messages, as coreutils' do.
  nameProcess(program);
  process.on('uncaughtException', (err) => fail(program, err));
  process.on('unhandledRejection', (err) => fail(program, err));
}

/** stdout could not take the output: a full disk, a closed descriptor. */
export function outputError(err: unknown): UserError {
  return new UserError(`cannot write the output: ${reason(err)}`);
}
