// enc_client --no-reuse: naming a key, and choosing and recording in the ledger the key symbols a job may use.
import { UserError } from '../cli/errors.js';
import { cryptoModule } from '../tls/lazy-modules.js';
import { plural, textOf } from '../format/words.js';
import { countSymbols, keyTooShort, readInto, type InputFile } from './input-file.js';
import { updateLedger } from './ledger.js';
import { add, gapFrom, longestGap, lowestFit, overlap, remove, usedCount, type Range } from './ranges.js';

export { ledgerPath } from './ledger.js';

/**
 * The ledger names a key by the SHA-256 of its first 64 symbols: never by its path (a key
 * copied or moved is the same pad), never by anything that gives the key away. 64 symbols
 * are 304 bits of chance, beyond any search even for one who knows a few of them; a shorter
 * key could be found from its hash, so --no-reuse refuses it.
 */
export const KEY_ID_SYMBOLS = 64;
const KEY_ID_DOMAIN = 'otp ledger key id 1\n';

export function keyId(key: InputFile): string {
  const symbols = countSymbols(key, KEY_ID_SYMBOLS);
  if (symbols < KEY_ID_SYMBOLS) {
    throw new UserError(
      `--no-reuse needs a key of at least ${KEY_ID_SYMBOLS} symbols, and key '${key.path}' has ${symbols}: the ledger names a key by its first ${KEY_ID_SYMBOLS}`,
    );
  }
  const first = Buffer.alloc(KEY_ID_SYMBOLS);
  readInto(key, first, 0, KEY_ID_SYMBOLS, 0);
  return cryptoModule().createHash('sha256').update(KEY_ID_DOMAIN).update(first).digest('hex');
}

/** Symbols [start, end) as people count them: 'symbols 120-155', 'symbol 7'. */
export function describeRange(range: Range): string {
  return range.end - range.start === 1 ? `symbol ${range.start}` : `symbols ${range.start}-${range.end - 1}`;
}

export interface Job {
  ledger: string;
  key: InputFile;
  /** Symbols in the key file. */
  keyLength: number;
  /** The text's length, or null for a stream (stdin, a pipe), which is given a whole unused stretch. */
  symbols: number | null;
  /** --offset, or null to take the lowest stretch that fits. */
  offset: number | null;
}

export interface Reservation {
  id: string;
  /** The key symbols recorded for the job; for a stream, more than it may need. */
  range: Range;
}

/** Chooses the job's key symbols and records them, before anything is sent. */
export function reserve(job: Job): Reservation {
  const id = keyId(job.key);
  const range = updateLedger(job.ledger, (ledger) => {
    const used = ledger.get(id) ?? [];
    const range = job.symbols === null ? streamRange(job, used) : fileRange(job, used, job.symbols);
    ledger.set(id, add(used, range));
    return range;
  });
  return { id, range };
}

/** Gives back the reserved symbols a stream did not use (`sent` is how many it did). */
export function trim(job: Job, reservation: Reservation, sent: number): void {
  const { id, range } = reservation;
  if (range.start + sent >= range.end) return;
  updateLedger(job.ledger, (ledger) => {
    ledger.set(id, remove(ledger.get(id) ?? [], { start: range.start + sent, end: range.end }));
  });
}

function fileRange(job: Job, used: readonly Range[], symbols: number): Range {
  const { key, keyLength, offset } = job;
  if (symbols === 0) return { start: offset ?? 0, end: offset ?? 0 };
  if ((offset ?? 0) + symbols > keyLength) throw keyTooShort(key, keyLength, textOf(symbols), { offset: offset ?? 0 });
  if (offset !== null) {
    const range = { start: offset, end: offset + symbols };
    const clash = overlap(used, range);
    if (clash) {
      const both = { start: Math.max(range.start, clash.start), end: Math.min(range.end, clash.end) };
      const were = both.end - both.start === 1 ? 'was' : 'were';
      throw new UserError(
        `${describeRange(both)} of key '${key.path}' ${were} used by an earlier --no-reuse job; leave out --offset to take the lowest unused ones`,
      );
    }
    return range;
  }
  const start = lowestFit(used, keyLength, symbols);
  if (start === null) {
    const longest = longestGap(used, keyLength);
    throw new UserError(
      `key '${key.path}' has no ${symbols} unused symbols in a row for ${textOf(symbols)}: ` +
        `${usedCount(used, keyLength)} of its ${plural(keyLength, 'symbol')} are used, the longest unused stretch is ${longest ? longest.end - longest.start : 0}`,
    );
  }
  return { start, end: start + symbols };
}

/** A stream's length is unknown: it gets the unused stretch from --offset, or the longest. */
function streamRange(job: Job, used: readonly Range[]): Range {
  const { key, keyLength, offset } = job;
  if (offset === null) {
    const longest = longestGap(used, keyLength);
    if (!longest) throw new UserError(`all ${plural(keyLength, 'symbol')} of key '${key.path}' are used`);
    return longest;
  }
  if (offset >= keyLength) throw keyTooShort(key, keyLength, 'a text', { offset });
  const gap = gapFrom(used, keyLength, offset);
  if (!gap) {
    throw new UserError(
      `symbol ${offset} of key '${key.path}' was used by an earlier --no-reuse job; leave out --offset to take the longest unused stretch`,
    );
  }
  return gap;
}

/** The error for a stream that outgrows its reserved stretch. */
export function stretchTooShort(key: InputFile, range: Range): (atLeast: number) => Error {
  return (atLeast) =>
    new UserError(
      `key '${key.path}' has ${plural(range.end - range.start, 'unused symbol')} in a row from offset ${range.start}: too few for a text of at least ${plural(atLeast, 'symbol')}`,
    );
}

/** The line enc_client prints on success: what it used, and how to decrypt. */
export function usedLine(program: string, key: InputFile, range: Range): string {
  if (range.end === range.start) return `${program}: used no key symbols of '${key.path}' (the text is empty)`;
  return (
    `${program}: used key symbols ${range.start}-${range.end - 1} of '${key.path}'; ` +
    `decrypt with: dec_client --offset ${range.start} CIPHERTEXT ${shellWord(key.path)} PORT`
  );
}

/** A word the shell reads back as `word`. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
