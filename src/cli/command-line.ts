// The command line every program shares: options and arguments parsed strictly, --help and --version, usage errors in one line.
import { parseArgs } from 'node:util';
import { fail, UserError } from './errors.js';
import { printAndExit } from './stdout.js';

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

export interface CommandLine {
  /** The name the program was invoked as, which --help, --version and usage errors use. */
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
  if (parsed.values.help) printAndExit(spec.program, usage(spec));
  if (parsed.values.version) printAndExit(spec.program, `${spec.program} ${version}\n`);
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
  fail(spec.program, new UserError(`${message}; usage: ${spec.program} [options] ${spec.synopsis} (see --help)`));
}
