// The pad ledger: where it lives, its text format, and changing it atomically under a lock.
import { closeSync, constants, fstatSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { reason, UserError } from '../cli/errors.js';
import { fileKind } from '../format/file-kind.js';
import { FileLock } from './ledger-lock.js';
import { normalize, type Range } from './ranges.js';

/** The first line of every ledger; a ledger without it is not one this version can read. */
export const LEDGER_HEADER = '# otp pad ledger 1: each line is a key id (SHA-256) and the key symbols used';

/**
 * A ledger grows by one line of some 100 bytes per key: 64 MiB is over half a million
 * keys, more than any real one. A larger file is not a ledger, and reading it whole
 * would only cost the memory.
 */
export const LEDGER_MAX_BYTES = 64 * 1024 * 1024;

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

/**
 * The ledger at `path`; empty when the file does not exist yet. It is opened once, without
 * waiting (a FIFO's open blocks until a writer comes), and the descriptor itself is
 * checked: whatever the name pointed at a moment before, only a regular file is read.
 */
export function readLedger(path: string): Ledger {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw cannotRead(path, err);
  }
  try {
    const stats = fstatSync(fd);
    refuseUnlessLedgerFile(stats, path);
    return parseLedger(readBounded(fd, stats.size, path), path);
  } finally {
    closeSync(fd);
  }
}

/**
 * Refuses, before anything is locked or created, a ledger that exists and is not a
 * regular file or is too large to be one: with the lock held, a FIFO would block its
 * read for ever and a device (/dev/zero) would be read without end. readLedger checks
 * again the file it opens; this only refuses early.
 */
function refuseStrangeLedger(path: string): void {
  let stats: Stats;
  try {
    // Not throwIfNoEntry: Node 24 takes ENOTDIR (a name under a FIFO) for ENOENT too, and Node 20 does not.
    stats = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw cannotRead(path, err);
  }
  refuseUnlessLedgerFile(stats, path);
}

function refuseUnlessLedgerFile(stats: Stats, path: string): void {
  if (!stats.isFile()) throw new UserError(`the ledger '${path}' is ${fileKind(stats)}, not a regular file`);
  if (stats.size > LEDGER_MAX_BYTES) throw tooLarge(path);
}

/** The file's bytes as text, never more than LEDGER_MAX_BYTES of them, whatever `size` said (a file in /proc says 0). */
function readBounded(fd: number, size: number, path: string): string {
  // The last buffer ends a page past the limit, so the read that crosses it asks for a whole
  // page: some kernel files (/proc/self/pagemap) serve only whole entries.
  const most = LEDGER_MAX_BYTES + 4096;
  // One byte more than the size, to see the end in the first buffer.
  let bytes = Buffer.allocUnsafe(Math.min(Math.max(size + 1, 4096), most));
  let length = 0;
  for (;;) {
    if (length === bytes.length) bytes = Buffer.concat([bytes], Math.min(2 * length, most));
    let got: number;
    try {
      got = readSync(fd, bytes, length, bytes.length - length, null);
    } catch (err) {
      throw cannotRead(path, err);
    }
    length += got;
    if (length > LEDGER_MAX_BYTES) throw tooLarge(path);
    if (got === 0) return bytes.toString('latin1', 0, length);
  }
}

function cannotRead(path: string, err: unknown): UserError {
  return new UserError(`cannot read the ledger '${path}': ${reason(err)}`);
}

function tooLarge(path: string): UserError {
  return new UserError(`the ledger '${path}' is over ${LEDGER_MAX_BYTES / 1024 / 1024} MiB, larger than any ledger; move it away (it is never reset)`);
}

/** Replaces the ledger whole: a new file, synced, renamed over the old, and the directory synced. */
function writeLedger(path: string, ledger: Ledger): void {
  const temp = `${path}.new`;
  try {
    unlinkSync(temp);
  } catch (err) {
    // Usually there is none: only a holder of the lock killed mid-write leaves one.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot remove '${temp}': ${reason(err)}`);
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
  refuseStrangeLedger(path);
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
