// A client's text and key files: opening them, checking them, reading them in step.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { describeByte, findNonSymbol, NEWLINE, scanBuffer } from '../cipher/alphabet.js';
import { reason, UserError } from '../cli/errors.js';
import { plural, textOf } from '../format/words.js';

export interface InputFile {
  /** 'text', 'ciphertext' or 'key', for messages. */
  what: string;
  /** As the user gave it; '-' is stdin. */
  path: string;
  fd: number;
  /** Regular files are checked whole before the job starts; anything else as it streams. */
  regular: boolean;
  /** Bytes in a regular file. */
  size: number;
}

export function openInput(what: string, path: string): InputFile {
  let fd: number;
  try {
    fd = path === '-' ? 0 : openSync(path, 'r');
  } catch (err) {
    throw new UserError(`cannot open ${what} '${path}': ${reason(err)}`);
  }
  const stat = fstatSync(fd);
  if (stat.isDirectory()) {
    closeSync(fd);
    throw new UserError(`cannot read ${what} '${path}': is a directory`);
  }
  return { what, path, fd, regular: stat.isFile(), size: stat.size };
}

export function badCharacter(file: InputFile, byte: number, at: number): UserError {
  return new UserError(`bad character ${describeByte(byte)} in ${file.what} '${file.path}' at byte ${at + 1}`);
}

/** Reads up to `length` bytes into buf[offset...]; 0 only at the end of the file. */
export function readInto(file: InputFile, buf: Buffer, offset: number, length: number, position: number | null): number {
  try {
    return readSync(file.fd, buf, offset, length, position);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return readInto(file, buf, offset, length, position);
    throw new UserError(`cannot read ${file.what} '${file.path}': ${reason(err)}`);
  }
}

/**
 * Checks bytes [from, limit) of a regular file and returns where its symbols end there:
 * `limit`, or sooner when the file ends sooner, in at most one final newline. A `from`
 * past the end is taken back to the file's last byte, so that the answer is its length.
 */
export function countSymbols(file: InputFile, limit: number, from = 0): number {
  let pos = Math.max(0, Math.min(from, file.size - 1));
  const buf = scanBuffer(limit - pos);
  while (pos < limit) {
    const got = readInto(file, buf, 0, Math.min(buf.length, limit - pos), pos);
    if (got === 0) return pos;
    const bad = findNonSymbol(buf, 0, got);
    if (bad >= 0) {
      const at = pos + bad;
      if (buf[bad] === NEWLINE && at === file.size - 1) return at;
      throw badCharacter(file, buf[bad], at);
    }
    pos += got;
  }
  return pos;
}

/** Checks a regular text before connecting; returns its length in symbols. */
export function checkText(text: InputFile): number {
  return countSymbols(text, text.size);
}

/** Checks the key symbols a regular text of `symbols` will use, from symbol `offset` on. */
export function checkKey(key: InputFile, symbols: number, offset: number): void {
  const keySymbols = countSymbols(key, offset + symbols, offset);
  if (keySymbols < offset + symbols) throw keyTooShort(key, keySymbols, textOf(symbols), { offset });
}

/**
 * `offset`: the job starts at that key symbol (--offset). `shrank`: the key was long
 * enough when checked, and lost symbols while it was read.
 */
export function keyTooShort(key: InputFile, keySymbols: number, text: string, how: { offset?: number; shrank?: boolean } = {}): UserError {
  const when = how.shrank ? ' (it shrank while it was read)' : '';
  const at = how.offset ? ` at offset ${how.offset}` : '';
  return new UserError(`key '${key.path}' is too short${when}: ${plural(keySymbols, 'symbol')} for ${text}${at}`);
}
