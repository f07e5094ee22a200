// The pad ledger: where it lives, its text format, and changing it atomically under a lock.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { reason, UserError } from '../cli/errors.js';
import { FileLock } from './ledger-lock.js';
import { normalize, type Range } from './ranges.js';

/** The first line of every ledger; a ledger without it is not one this version can read. */
export const LEDGER_HEADER = '# otp pad ledger 1: each line is a key id (SHA-256) and the key symbols used';

/** Used ranges by key id. */
export type Ledger = Map<string, Range[]>;

/** $OTP_LEDGER, else $XDG_STATE_HOME/otp/ledger, else ~/.local/state/otp/ledger. */
export function ledgerPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OTP_LEDGER) return env.OTP_LEDGER;
  // The XDG spec says to ignore a relative XDG_STATE_HOME.
  const state = env.XDG_STATE_HOME && isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : join(env.HOME || homedir(), '.local', 'state');
  return join(state, 'otp', 'ledger');
}

/** Ranges are written as the user sees them: first and last symbol, inclusive. */
export function formatLedger(ledger: Ledger): string {
  const lines = [LEDGER_HEADER];
  for (const [id, ranges] of [...ledger].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (ranges.length > 0) lines.push(`${id} ${ranges.map((r) => `${r.start}-${r.end - 1}`).join(',')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Parses a ledger; anything but exactly what formatLedger writes is an error naming the line. */
export function parseLedger(text: string, path: string): Ledger {
  const lines = text.split('\n');
  const damaged = (line: number, why: string): UserError =>
    new UserError(`the ledger '${path}' is damaged at line ${line}: ${why}; fix it or move it away (it is never reset)`);
  if (lines[0] !== LEDGER_HEADER) throw damaged(1, 'it does not start with the otp ledger header');
  if (lines[lines.length - 1] !== '') throw damaged(lines.length, 'the last line is cut short');
  const ledger: Ledger = new Map();
  for (let i = 1; i < lines.length - 1; i++) {
    const match = /^([0-9a-f]{64}) (\d{1,15}-\d{1,15}(?:,\d{1,15}-\d{1,15})*)$/.exec(lines[i]);
    if (!match) throw damaged(i + 1, 'not a key id and its ranges');
    if (ledger.has(match[1])) throw damaged(i + 1, 'the key is listed twice');
    const ranges = match[2].split(',').map((pair) => {
      const [first, last] = pair.split('-').map(Number);
      return { start: first, end: last + 1 };
    });
    // Ranges in order and apart, as written: anything else was edited or damaged.
    const ordered = ranges.every((r, j) => r.start < r.end && (j === 0 || r.start > ranges[j - 1].end));
    if (!ordered) throw damaged(i + 1, 'the ranges are not in order');
    ledger.set(match[1], ranges);
  }
  return ledger;
}

/** The ledger at `path`; empty when the file does not exist yet. */
export function readLedger(path: string): Ledger {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new UserError(`cannot read the ledger '${path}': ${reason(err)}`);
  }
  return parseLedger(text, path);
}

/** Replaces the ledger whole: a new file, synced, renamed over the old, and the directory synced. */
function writeLedger(path: string, ledger: Ledger): void {
  const temp = `${path}.new`;
  try {
    unlinkSync(temp);
  } catch {
    // Usually there is none: only a holder of the lock killed mid-write leaves one.
  }
  const fd = openSync(temp, 'wx', 0o600);
  try {
    const bytes = Buffer.from(formatLedger(ledger), 'latin1');
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * Reads the ledger, lets `change` edit it, and writes it back, all under the ledger's lock,
 * so that concurrent clients see each other's changes. Returns what `change` returns;
 * a `change` that throws leaves the ledger as it was.
 */
export function updateLedger<T>(path: string, change: (ledger: Ledger) => T): T {
  const what = `the ledger '${path}'`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new UserError(`cannot create the directory of ${what}: ${reason(err)}`);
  }
  const lock = new FileLock(`${path}.lock`, what);
  try {
    lock.acquire();
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`cannot lock ${what}: ${reason(err)}`);
  }
  try {
    const ledger = readLedger(path);
    const result = change(ledger);
    for (const [id, ranges] of ledger) ledger.set(id, normalize(ranges));
    try {
      writeLedger(path, ledger);
    } catch (err) {
      throw new UserError(`cannot write ${what}: ${reason(err)}`);
    }
    return result;
  } finally {
    lock.release();
  }
}
