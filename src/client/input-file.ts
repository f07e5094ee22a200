// A client's text and key files: opening them, checking them, reading them in step.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { describeByte, findNonSymbol, NEWLINE, scanBuffer } from '../alphabet.js';
import { reason, UserError } from '../cli.js';
import { plural, textOf } from '../words.js';

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
 * Checks bytes [0, limit) of a regular file and returns how many symbols it holds there:
 * `limit`, or fewer when the file ends sooner, in at most one final newline.
 */
export function countSymbols(file: InputFile, limit: number): number {
  const buf = scanBuffer(limit);
  let pos = 0;
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

/** Checks a regular text and key before connecting; returns the text's length in symbols. */
export function checkFiles(text: InputFile, key: InputFile): number {
  const symbols = countSymbols(text, text.size);
  const keySymbols = countSymbols(key, symbols);
  if (keySymbols < symbols) throw keyTooShort(key, keySymbols, textOf(symbols));
  return symbols;
}

/** `shrank`: the key was long enough when checked, and lost symbols while it was read. */
export function keyTooShort(key: InputFile, keySymbols: number, text: string, shrank = false): UserError {
  const when = shrank ? ' (it shrank while it was read)' : '';
  return new UserError(`key '${key.path}' is too short${when}: ${plural(keySymbols, 'symbol')} for ${text}`);
}
