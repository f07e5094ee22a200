// Checks a text or key that could not be checked in advance, chunk by chunk as it streams.
import { findNonSymbol, NEWLINE } from '../cipher/alphabet.js';
import { badCharacter, type InputFile } from './input-file.js';

/**
 * A newline is allowed only as the very last byte, which a stream reveals only at its
 * end: a chunk's trailing newline is held back, and forgiven if nothing follows it.
 */
export class SymbolCheck {
  private _heldNewline = false;

  /** `_seen` counts the bytes seen so far, the held newline included: from where checking starts (--offset). */
  constructor(
    private readonly _file: InputFile,
    private _seen = 0,
  ) {}

  /** The symbols of this chunk (the chunk itself, or less its final newline); throws at a bad byte. */
  symbols(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    if (this._heldNewline) throw badCharacter(this._file, NEWLINE, this._seen - 1);
    const bad = findNonSymbol(chunk);
    const start = this._seen;
    this._seen += chunk.length;
    if (bad < 0) return chunk;
    if (chunk[bad] === NEWLINE && bad === chunk.length - 1) {
      this._heldNewline = true;
      return chunk.subarray(0, bad);
    }
    throw badCharacter(this._file, chunk[bad], start + bad);
  }
}
