// The cipher over frames: TEXT and KEY in, one RESULT frame out per frame that matches waiting bytes; END → DONE; any fault → ERROR.
import { cipherTable, describeByte, SIMD_FROM, VALUE, type Direction } from './alphabet.js';
import { getKernels, REGION } from '../simd/kernels.js';
import { CIPHER_WINDOW, ErrorCode, FrameType, errorFrame, type Frame } from '../protocol/frames.js';
import { plural, textOf } from '../format/words.js';
import { RingQueue, type RingMemory } from './ring-queue.js';

const tables: Partial<Record<Direction, Uint8Array>> = {};

export interface CipherOptions {
  /** Most bytes one stream may run ahead of the other (default CIPHER_WINDOW). */
  window?: number;
  /**
   * Write the result over the incoming payloads instead of new buffers, for a caller
   * whose payloads are nobody else's (a server's socket reads): no allocation.
   */
  overwrite?: boolean;
  /**
   * Where the memory of the ring that the bytes waiting for a partner are copied into
   * comes from (a pool's, for the window's full size, so that the next job uses it again);
   * new buffers by default. The payloads themselves are never held: a caller may reuse
   * their memory once take() returns.
   */
  ring?: RingMemory;
}

/** Where the cipher's frames go: RESULT, DONE or ERROR, then null once the output has ended. */
export type CipherOutput = (frame: Frame | null) => void;

/**
 * Frame boundaries mean nothing here: text and key are two byte streams, and symbol i
 * of the output is made as soon as byte i of both has arrived. The bytes that wait for
 * a partner are one stream's lead over the other, bounded by `window`.
 *
 * A fault (a bad byte, a missing key, a frame out of place) is answered with an ERROR
 * frame and the end of the output; the faults it receives from upstream pass through
 * the same way. Input after that is dropped.
 */
export class CipherCore {
  readonly window: number;
  readonly direction: Direction;
  /** Symbols sent so far. */
  symbols = 0;
  /** The ERROR frame that ended this job, if one did. */
  fault: Frame | null = null;
  /** True once END was met and every symbol sent. */
  completed = false;

  private readonly _table: Uint8Array;
  /** Bytes of whichever stream is ahead, waiting for the other; oldest first. */
  private readonly _waiting: RingQueue;
  private _waitingType: number = FrameType.TEXT;
  private readonly _overwrite: boolean;

  constructor(
    direction: Direction,
    private readonly _output: CipherOutput,
    options: CipherOptions = {},
  ) {
    const window = (this.window = options.window ?? CIPHER_WINDOW);
    this.direction = direction;
    this._overwrite = options.overwrite ?? false;
    this._waiting = new RingQueue(window, options.ring);
    this._table = tables[direction] ??= cipherTable(direction);
  }

  /** Gives the ring's memory back, for a cipher that will take no more input (its job torn down). */
  release(): void {
    this._waiting.release();
  }

  /** The output has ended, with DONE or an ERROR frame: input after that is dropped. */
  get ended(): boolean {
    return this.fault !== null || this.completed;
  }

  /** Pieces held waiting for a partner: bounded by the bytes waiting, however they were cut. */
  get waitingPieces(): number {
    return this._waiting.pieces;
  }

  /** Takes the next frame of the input. */
  take(frame: Frame): void {
    if (this.ended) return;
    switch (frame.type) {
      case FrameType.TEXT:
      case FrameType.KEY:
        this._take(frame.type, frame.payload, frame.headroom === true);
        break;
      case FrameType.END:
        this._end();
        break;
      case FrameType.ERROR:
        this._stop(frame);
        break;
      default:
        this._stop(errorFrame(ErrorCode.PROTOCOL, `unexpected frame of type ${frame.type}`));
    }
  }

  /** The input has ended: a fault unless END came before. */
  finish(): void {
    if (!this.ended) this._stop(errorFrame(ErrorCode.PROTOCOL, 'the connection ended before the END frame'));
  }

  /**
   * Matches an incoming piece against the other stream's waiting bytes, however many
   * pieces they came in, and sends the symbols as ONE result; the rest of the piece waits.
   */
  private _take(type: number, bytes: Buffer, headroom: boolean): void {
    const waiting = this._waiting;
    if (waiting.bytes > 0 && this._waitingType !== type) {
      const matched = Math.min(bytes.length, waiting.bytes);
      const out = this._overwrite ? bytes.subarray(0, matched) : Buffer.allocUnsafe(matched);
      for (let done = 0; done < matched; ) {
        const head = waiting.front();
        const n = Math.min(head.length, matched - done);
        const part = bytes.subarray(done, done + n);
        const text = type === FrameType.TEXT ? part : head.subarray(0, n);
        const key = type === FrameType.TEXT ? head.subarray(0, n) : part;
        const bad = this._cipher(text, key, out, done);
        if (bad >= 0) {
          // The symbols before the bad pair are made: they go, then the fault.
          if (done + bad > 0) this._send(out.subarray(0, done + bad), headroom);
          this._badByte(text[bad], key[bad]);
          return;
        }
        waiting.take(n);
        done += n;
      }
      this._send(out, headroom);
      if (matched === bytes.length) return;
      bytes = bytes.subarray(matched);
    }
    if (waiting.bytes + bytes.length > this.window) {
      const ahead = type === FrameType.TEXT ? 'text' : 'key';
      this._stop(errorFrame(ErrorCode.KEY_LAG, `the ${ahead} ran more than ${this.window} bytes ahead`));
      return;
    }
    this._waitingType = type;
    waiting.push(bytes);
  }

  /** A RESULT written over a payload begins where it did, so the bytes before it are as free as they were. */
  private _send(symbols: Buffer, headroom: boolean): void {
    this.symbols += symbols.length;
    this._output({ type: FrameType.RESULT, payload: symbols, headroom: this._overwrite && headroom } satisfies Frame);
  }

  /** Stops with BAD_TEXT or BAD_KEY for the pair of these bytes, the one after the symbols sent. */
  private _badByte(textByte: number, keyByte: number): void {
    const textBad = VALUE[textByte] < 0;
    const byte = textBad ? textByte : keyByte;
    this._stop(
      errorFrame(
        textBad ? ErrorCode.BAD_TEXT : ErrorCode.BAD_KEY,
        `bad character ${describeByte(byte)} in the ${textBad ? 'text' : 'key'} at symbol ${this.symbols + 1}`,
      ),
    );
  }

  /**
   * Writes the cipher of text and key to out[at...]; returns the index of the first pair
   * with a bad byte, the output of every pair before it written, or -1. `out` may be the
   * memory of `text` or `key` itself: neither path writes a pair's output before that pair
   * is read and checked, so a bad byte is still there to be named.
   */
  private _cipher(text: Buffer, key: Buffer, out: Buffer, at: number): number {
    const n = text.length;
    const kernels = n >= SIMD_FROM ? getKernels() : null;
    if (!kernels) return this._plain(text, key, out, at, 0, n);
    const { memory, a, b } = kernels;
    const kernel = this.direction === 'encrypt' ? kernels.encrypt : kernels.decrypt;
    for (let from = 0; from < n; from += REGION) {
      const len = Math.min(REGION, n - from);
      memory.set(text.subarray(from, from + len), a);
      memory.set(key.subarray(from, from + len), b);
      const bad = kernel(a, b, kernels.out, len);
      if (bad >= 0) {
        // The kernel stores whole blocks, up to the one with the bad pair: the rest by the table.
        const whole = bad & ~15;
        memory.copy(out, at + from, kernels.out, kernels.out + whole);
        this._plain(text, key, out, at, from + whole, from + bad);
        return from + bad;
      }
      memory.copy(out, at + from, kernels.out, kernels.out + len);
    }
    return -1;
  }

  /** The table's cipher of pairs [from, to) into out[at + from...]; the first bad pair's index, or -1. */
  private _plain(text: Buffer, key: Buffer, out: Buffer, at: number, from: number, to: number): number {
    const table = this._table;
    for (let i = from; i < to; i++) {
      const symbol = table[(text[i] << 8) | key[i]];
      if (symbol === 0) return i;
      out[at + i] = symbol;
    }
    return -1;
  }

  private _end(): void {
    if (this._waiting.bytes > 0 && this._waitingType === FrameType.TEXT) {
      const total = this.symbols + this._waiting.bytes;
      this._stop(errorFrame(ErrorCode.KEY_SHORT, `the key is too short: ${plural(this.symbols, 'symbol')} for ${textOf(total)}`));
      return;
    }
    this._waiting.release();
    this.completed = true;
    this._output({ type: FrameType.DONE, payload: Buffer.alloc(0) } satisfies Frame);
    this._output(null);
  }

  private _stop(fault: Frame): void {
    this.fault = fault;
    this._waiting.release();
    this._output(fault);
    this._output(null);
  }
}
