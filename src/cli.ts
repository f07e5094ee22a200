// What every program shares on the command line: parsing, one-line errors, exit codes.
import { parseArgs } from 'node:util';
import { invokedName, nameProcess } from './process-name.js';

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

export function fail(program: string, err: unknown): never {
  // Anything but a UserError is a system error or a bug: no Node decoration, one line.
  const message = err instanceof UserError ? err.message : reason(err);
  const code = err instanceof UserError ? err.exitCode : EXIT_INPUT;
  process.stderr.write(`${program}: error: ${message.split('\n')[0]}\n`);
  process.exit(code);
}

/** A port: a plain decimal number from 1 to 65535, without sign, spaces or leading zeros. */
export function parsePort(text: string): number {
  const port = /^[1-9][0-9]{0,4}$/.test(text) ? Number(text) : NaN;
  if (!(port <= 65535)) throw new UserError(`'${text}' is not a port: give a number from 1 to 65535`);
  return port;
}

/** A count given as option `name`: a plain decimal number from `min` to `max`. */
export function parseCount(name: string, text: string, min: number, max: number): number {
  const value = /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) throw new UserError(`${name} '${text}' is not a number from ${min} to ${max}`);
  return value;
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
 * Sets up what every program does on the way out: no stack trace ever reaches the user,
 * and a reader that goes away (`| head`) ends the program quietly.
 */
export function guard(program: string): void {
  // The process goes by the name it was invoked as (a symlink otp_enc_d, for killall);
  // messages keep the program's own name, since they speak of roles: enc_server, dec_client.
  nameProcess(invokedName(program));
  process.on('uncaughtException', (err) => fail(program, err));
  process.on('unhandledRejection', (err) => fail(program, err));
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT_OK);
    fail(program, outputError(err));
  });
}

/** stdout could not take the output: a full disk, a closed descriptor. */
export function outputError(err: unknown): UserError {
  return new UserError(`cannot write the output: ${reason(err)}`);
}

export interface CommandLine {
  program: string;
  /** The synopsis after the program's name, e.g. 'PLAINTEXT KEY PORT'. */
  synopsis: string;
  /** What the program does, a few lines. */
  about: string;
  /** The positional arguments' names, to count them. */
  positionals: string[];
  /** How many of the last positionals may be left out (the program says when that is an error). */
  optionalPositionals?: number;
  options: Record<string, { type: 'string' | 'boolean'; short?: string; help: string; arg?: string }>;
}

export interface ParsedCommandLine {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export function usage(spec: CommandLine): string {
  const entries: [string, string][] = Object.entries(spec.options).map(([name, o]) => [
    `${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` ${o.arg}` : ''}`,
    o.help,
  ]);
  entries.push(['-h, --help', 'show this help and exit'], ['-V, --version', 'show the version and exit']);
  const width = Math.max(...entries.map(([left]) => left.length)) + 2;
  const lines = entries.map(([left, help]) => `  ${left.padEnd(width)}${help}`);
  return `usage: ${spec.program} [options] ${spec.synopsis}\n\n${spec.about}\n\noptions:\n${lines.join('\n')}\n`;
}

/** Parses argv; answers --help and --version itself; a usage error exits 1 with one line. */
export function parseCommandLine(spec: CommandLine, version: string, argv = process.argv.slice(2)): ParsedCommandLine {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    ...Object.fromEntries(
      Object.entries(spec.options).map(([name, o]) => [name, o.short ? { type: o.type, short: o.short } : { type: o.type }]),
    ),
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'V' },
  };
  // Not strict: parseArgs' own errors are in its words, so the tokens are checked here.
  const { values, positionals, tokens } = parseArgs({ args: argv, allowPositionals: true, strict: false, tokens: true, options });
  for (const token of tokens) {
    const type = token.kind === 'option' && Object.hasOwn(options, token.name) ? options[token.name].type : undefined;
    const problem = token.kind === 'option' ? optionProblem(spec, type, token, argv[token.index]) : null;
    if (problem) usageError(spec, problem);
  }
  const parsed: ParsedCommandLine = { values: values as ParsedCommandLine['values'], positionals };
  if (parsed.values.help) {
    process.stdout.write(usage(spec));
    process.exit(EXIT_OK);
  }
  if (parsed.values.version) {
    process.stdout.write(`${spec.program} ${version}\n`);
    process.exit(EXIT_OK);
  }
  const want = spec.positionals.length;
  const least = want - (spec.optionalPositionals ?? 0);
  if (parsed.positionals.length > want || parsed.positionals.length < least) {
    const got = parsed.positionals.length;
    usageError(spec, `${want} argument${want === 1 ? '' : 's'} expected (${spec.positionals.join(' ')}), ${got} given`);
  }
  return parsed;
}

interface OptionToken {
  name: string;
  rawName: string;
  value?: string;
  inlineValue?: boolean;
}

/** What is wrong with one option on the command line, in the project's words; null if nothing. */
function optionProblem(spec: CommandLine, type: 'string' | 'boolean' | undefined, token: OptionToken, arg: string): string | null {
  const { rawName, value } = token;
  // '-v=3' is read as the options -v, -= and -3: name the whole argument too.
  if (type === undefined) return `unknown option '${rawName}'${arg !== rawName && !arg.startsWith('--') ? ` in '${arg}'` : ''}`;
  if (type === 'boolean') return value === undefined ? null : `option '${rawName}' takes no value`;
  const form = `${rawName} ${spec.options[token.name]?.arg ?? 'VALUE'}`;
  if (value === undefined) return `option '${rawName}' needs a value (${form})`;
  // '--host -v' is more likely a forgotten value than a host named '-v'.
  if (!token.inlineValue && value.length > 1 && value.startsWith('-')) {
    return `option '${rawName}' needs a value, not the option '${value}' (for a value that starts with '-', write --${token.name}=${value})`;
  }
  return null;
}

function usageError(spec: CommandLine, message: string): never {
  process.stderr.write(`${spec.program}: error: ${message}; usage: ${spec.program} [options] ${spec.synopsis} (see --help)\n`);
  process.exit(EXIT_INPUT);
}
