// What every program shares on the command line: parsing, one-line errors, exit codes.
import { parseArgs } from 'node:util';

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
  const message = err instanceof UserError ? err.message : err instanceof Error ? err.message : String(err);
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
  const known: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EISDIR: 'is a directory',
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    EPIPE: 'broken pipe',
    ETIMEDOUT: 'timed out',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'the host name cannot be resolved now',
    EADDRNOTAVAIL: 'no such local address',
    EHOSTUNREACH: 'no route to host',
  };
  return (e.code && known[e.code]) || e.message || String(err);
}

/**
 * Sets up what every program does on the way out: no stack trace ever reaches the user,
 * and a reader that goes away (`| head`) ends the program quietly.
 */
export function guard(program: string): void {
  process.title = program;
  process.on('uncaughtException', (err) => fail(program, err));
  process.on('unhandledRejection', (err) => fail(program, err));
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT_OK);
    fail(program, new UserError(`cannot write the output: ${reason(err)}`));
  });
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
  let parsed: ParsedCommandLine;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        ...Object.fromEntries(
          Object.entries(spec.options).map(([name, o]) => [name, o.short ? { type: o.type, short: o.short } : { type: o.type }]),
        ),
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    }) as ParsedCommandLine;
  } catch (err) {
    usageError(spec, (err as Error).message.split('. ')[0].replace(/^Unknown option/, 'unknown option'));
  }
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

function usageError(spec: CommandLine, message: string): never {
  process.stderr.write(`${spec.program}: error: ${message}; usage: ${spec.program} [options] ${spec.synopsis} (see --help)\n`);
  process.exit(EXIT_INPUT);
}
