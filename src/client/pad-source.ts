// Readable: a client's job as frames — HELLO, then TEXT and KEY read in step, then END.
import { fstatSync } from 'node:fs';
import { Readable } from 'node:stream';
import { CHUNK_SIZE, FrameType, HEADER_SIZE, helloFrame, type Frame, type Role } from '../protocol/frames.js';
import { keyTooShort, readInto, type InputFile } from './input-file.js';
import { SymbolCheck } from './symbol-check.js';
import { BufferPool } from '../memory/buffer-pool.js';
import { Lease } from '../memory/lease.js';
import { plural, textOf } from '../format/words.js';

export interface PadSourceOptions {
  role: Role;
  text: InputFile;
  key: InputFile;
  /** The text's length in symbols when it was checked in advance; null to check it as it streams. */
  symbols: number | null;
  /** True when the key's first `symbols` bytes were checked in advance. */
  keyChecked: boolean;
  /** Where a text that is not a regular file comes from (stdin, a pipe). */
  textStream?: NodeJS.ReadableStream;
  /** The key symbol the job starts at (--offset); the key must then be a regular file. */
  keyOffset?: number;
  /** At most this many key symbols may be used; more text is the error it makes (a ledger's reservation). */
  keyLimit?: { symbols: number; error: (atLeast: number) => Error };
}

/**
 * Each TEXT frame is followed by a KEY frame of the same length, so the server's cipher
 * never holds more than one chunk unmatched. A text that is a regular file is read with
 * blocking reads at known offsets; a stream is taken as its chunks come.
 */
export class PadSource extends Readable {
  /** Text symbols read so far. */
  symbols = 0;
  /** What stopped the input (a bad byte, a short key, a read error), if anything did. */
  failure: Error | null = null;

  private readonly _options: PadSourceOptions;
  private readonly _textCheck: SymbolCheck | null;
  private readonly _keyCheck: SymbolCheck | null;
  private _iterator: AsyncIterator<Buffer> | null = null;
  private _pending: Buffer | null = null;
  /**
   * Text and key chunks read from files, each behind room for its frame's header, lent to
   * the frames (src/memory/lease.ts) until the socket has taken them; stream chunks come in
   * buffers of their own.
   */
  private readonly _pool = new BufferPool(HEADER_SIZE + CHUNK_SIZE);

  constructor(options: PadSourceOptions) {
    super({ objectMode: true, highWaterMark: 2 });
    this._options = options;
    this._textCheck = options.symbols === null ? new SymbolCheck(options.text) : null;
    this._keyCheck = options.keyChecked ? null : new SymbolCheck(options.key, options.keyOffset);
    this.push(helloFrame(options.role) satisfies Frame);
  }

  override _read(): void {
    this._produce().catch((err: Error) => {
      this.failure = err;
      this.destroy(err);
    });
  }

  private async _produce(): Promise<void> {
    const text = await this._nextText();
    if (text === null) {
      this.push({ type: FrameType.END, payload: Buffer.alloc(0) } satisfies Frame);
      this.push(null);
      return;
    }
    const key = this._readKey(text.length);
    this.symbols += text.length;
    // Text read from a file and every key chunk come from the pool; stream chunks do not.
    const textPooled = this._options.symbols !== null;
    this.push(textPooled ? this._lent(FrameType.TEXT, text) : ({ type: FrameType.TEXT, payload: text } satisfies Frame));
    this.push(this._lent(FrameType.KEY, key));
  }

  /** Room for `n` bytes in a buffer lent from the pool, behind room for a header. */
  private _room(n: number): Buffer {
    const buffer = this._pool.take();
    new Lease(buffer, () => this._pool.give(buffer));
    return buffer.subarray(HEADER_SIZE, HEADER_SIZE + n);
  }

  /** A frame of a payload read in by _room: it holds its lease, and its header goes in the room before it. */
  private _lent(type: number, payload: Buffer): Frame {
    Lease.holdView(payload);
    return { type, payload, headroom: true };
  }

  /** The next chunk of text symbols, or null at the end; never an empty chunk. */
  private async _nextText(): Promise<Buffer | null> {
    const { text, symbols } = this._options;
    if (symbols !== null) {
      const n = Math.min(CHUNK_SIZE, symbols - this.symbols);
      if (n === 0) return null;
      const buf = this._room(n);
      if (readFully(text, buf, this.symbols) < n) throw new Error(`${text.what} '${text.path}' changed while it was read`);
      return buf;
    }
    for (;;) {
      const chunk = await this._nextStreamChunk();
      if (chunk === null) return null;
      const symbols = this._textCheck!.symbols(chunk);
      if (symbols.length > 0) return symbols;
    }
  }

  private async _nextStreamChunk(): Promise<Buffer | null> {
    if (this._pending) {
      const chunk = this._pending;
      this._pending = null;
      return chunk;
    }
    this._iterator ??= this._options.textStream![Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const { value, done } = await this._iterator.next();
    if (done) return null;
    const chunk = value as Buffer;
    if (chunk.length <= CHUNK_SIZE) return chunk;
    this._pending = chunk.subarray(CHUNK_SIZE);
    return chunk.subarray(0, CHUNK_SIZE);
  }

  private _readKey(n: number): Buffer {
    const { key, symbols, keyOffset = 0, keyLimit } = this._options;
    if (keyLimit && this.symbols + n > keyLimit.symbols) throw keyLimit.error(this.symbols + n);
    const buf = this._room(n);
    const position = key.regular ? keyOffset + this.symbols : null;
    const got = readFully(key, buf, position);
    const keySymbols = this._keyCheck ? this._keyCheck.symbols(buf.subarray(0, got)).length : got;
    if (keySymbols < n) {
      const text = symbols === null ? `a text of at least ${plural(this.symbols + n, 'symbol')}` : textOf(symbols);
      // A regular file read at an offset past its new end gives nothing: what is left of
      // it is its size now, not how far this read had got.
      const read = keyOffset + this.symbols + keySymbols;
      const left = key.regular ? Math.min(read, fstatSync(key.fd).size) : read;
      throw keyTooShort(key, left, text, { offset: keyOffset, shrank: this._options.keyChecked });
    }
    return buf;
  }
}

/** Fills buf from the file, stopping early only at its end; returns the bytes read. */
function readFully(file: InputFile, buf: Buffer, position: number | null): number {
  let got = 0;
  while (got < buf.length) {
    const n = readInto(file, buf, got, buf.length - got, position === null ? null : position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
