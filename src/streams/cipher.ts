// Transform: TEXT and KEY frames in, RESULT frames out as soon as both streams have bytes; END → DONE.
import { Transform, type TransformCallback } from 'node:stream';
import { cipherTable, describeByte, SIMD_FROM, VALUE, type Direction } from '../alphabet.js';
import { getKernels, REGION } from '../simd/kernels.js';
import { CIPHER_WINDOW, ErrorCode, FrameType, errorFrame, type Frame } from '../protocol.js';
import { plural, textOf } from '../words.js';

const tables: Partial<Record<Direction, Uint8Array>> = {};

/**
 * Frame boundaries mean nothing here: text and key are two byte streams, and symbol i
 * of the output is made as soon as byte i of both has arrived. The bytes that wait for
 * a partner are one stream's lead over the other, bounded by `window`.
 *
 * A fault (a bad byte, a missing key, a frame out of place) is answered with an ERROR
 * frame and the end of the output; the faults it receives from upstream pass through
 * the same way. Input after that is dropped.
 */
export class Cipher extends Transform {
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
  private _waiting: Buffer[] = [];
  private _waitingBytes = 0;
  private _waitingType: number = FrameType.TEXT;

  /**
   * `overwriteText`: write the result over the TEXT payloads instead of new buffers, for
   * a caller whose payloads are nobody else's (a server's socket reads): no allocation.
   */
  constructor(
    direction: Direction,
    window = CIPHER_WINDOW,
    private readonly _overwriteText = false,
  ) {
    super({ objectMode: true });
    this.window = window;
    this.direction = direction;
    this._table = tables[direction] ??= cipherTable(direction);
  }

  override _transform(frame: Frame, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.fault || this.completed) return done();
    switch (frame.type) {
      case FrameType.TEXT:
      case FrameType.KEY:
        this._take(frame.type, frame.payload);
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
    done();
  }

  override _flush(done: TransformCallback): void {
    if (!this.fault && !this.completed) {
      this._stop(errorFrame(ErrorCode.PROTOCOL, 'the connection ended before the END frame'));
    }
    done();
  }

  private _take(type: number, bytes: Buffer): void {
    let offset = 0;
    while (this._waitingBytes > 0 && this._waitingType !== type && offset < bytes.length) {
      const head = this._waiting[0];
      const n = Math.min(head.length, bytes.length - offset);
      const part = bytes.subarray(offset, offset + n);
      const text = type === FrameType.TEXT ? part : head;
      const key = type === FrameType.TEXT ? head : part;
      if (!this._combine(text.subarray(0, n), key.subarray(0, n))) return;
      offset += n;
      this._waitingBytes -= n;
      if (n === head.length) this._waiting.shift();
      else this._waiting[0] = head.subarray(n);
    }
    if (offset === bytes.length) return;
    this._waitingType = type;
    this._waiting.push(offset === 0 ? bytes : bytes.subarray(offset));
    this._waitingBytes += bytes.length - offset;
    if (this._waitingBytes > this.window) {
      const ahead = type === FrameType.TEXT ? 'text' : 'key';
      this._stop(errorFrame(ErrorCode.KEY_LAG, `the ${ahead} ran more than ${this.window} bytes ahead`));
    }
  }

  /** Pushes the symbols of one matched stretch; false, after stopping, when a byte is bad. */
  private _combine(text: Buffer, key: Buffer): boolean {
    const { out, bad } = this._cipher(text, key);
    if (bad >= 0) {
      const textBad = VALUE[text[bad]] < 0;
      const byte = textBad ? text[bad] : key[bad];
      this._stop(
        errorFrame(
          textBad ? ErrorCode.BAD_TEXT : ErrorCode.BAD_KEY,
          `bad character ${describeByte(byte)} in the ${textBad ? 'text' : 'key'} at symbol ${this.symbols + bad + 1}`,
        ),
      );
      return false;
    }
    this.symbols += out.length;
    this.push({ type: FrameType.RESULT, payload: out } satisfies Frame);
    return true;
  }

  /**
   * The output and the index of the first pair with a bad byte, or -1. Only the SIMD
   * path may write over `text`: it checks each piece before copying it out, so the bad
   * byte is still there to be named.
   */
  private _cipher(text: Buffer, key: Buffer): { out: Buffer; bad: number } {
    const n = text.length;
    const kernels = n >= SIMD_FROM ? getKernels() : null;
    if (!kernels) {
      const out = Buffer.allocUnsafe(n);
      const table = this._table;
      for (let i = 0; i < n; i++) out[i] = table[(text[i] << 8) | key[i]];
      return { out, bad: out.indexOf(0) };
    }
    const out = this._overwriteText ? text : Buffer.allocUnsafe(n);
    const { memory, a, b } = kernels;
    const kernel = this.direction === 'encrypt' ? kernels.encrypt : kernels.decrypt;
    for (let at = 0; at < n; at += REGION) {
      const len = Math.min(REGION, n - at);
      memory.set(text.subarray(at, at + len), a);
      memory.set(key.subarray(at, at + len), b);
      const bad = kernel(a, b, kernels.out, len);
      if (bad >= 0) return { out, bad: at + bad };
      memory.copy(out, at, kernels.out, kernels.out + len);
    }
    return { out, bad: -1 };
  }

  private _end(): void {
    if (this._waitingBytes > 0 && this._waitingType === FrameType.TEXT) {
      const total = this.symbols + this._waitingBytes;
      this._stop(errorFrame(ErrorCode.KEY_SHORT, `the key is too short: ${plural(this.symbols, 'symbol')} for ${textOf(total)}`));
      return;
    }
    this._waiting = [];
    this.completed = true;
    this.push({ type: FrameType.DONE, payload: Buffer.alloc(0) } satisfies Frame);
    this.push(null);
  }

  private _stop(fault: Frame): void {
    this.fault = fault;
    this._waiting = [];
    this.push(fault);
    this.push(null);
  }
}
