// Transform: length-prefixed bytes in, Frame objects out; a fault becomes an ERROR frame and the end.
import { Transform, type TransformCallback } from 'node:stream';
import {
  ErrorCode,
  HEADER_SIZE,
  MAX_CONTROL_PAYLOAD,
  MAX_PAYLOAD,
  STREAM_TYPES,
  errorFrame,
  type Frame,
} from '../protocol.js';

export interface FrameDecoderOptions {
  /** Largest payload of a TEXT, KEY or RESULT frame. */
  maxPayload?: number;
  /** Largest payload of any other frame. */
  maxControlPayload?: number;
  /**
   * Pass the payload of a TEXT, KEY or RESULT frame on in parts as its bytes arrive
   * (zero-copy), instead of gathering the whole frame first.
   */
  partial?: boolean;
}

/**
 * A malformed byte stream cannot be resynchronised, so the decoder answers the first
 * fault with an ERROR frame, ends its output, and ignores whatever arrives after it.
 * It never errors itself: the connection's other stages decide what a fault costs.
 */
export class FrameDecoder extends Transform {
  readonly maxPayload: number;
  readonly maxControlPayload: number;
  readonly partial: boolean;
  /** Set once a fault has ended the output. */
  faulted = false;
  /** The fault was the input ending inside a frame (a broken connection), not a bad frame. */
  cutShort = false;

  private _header = Buffer.alloc(HEADER_SIZE);
  private _headerFill = 0;
  private _type = 0;
  /** Payload bytes of the current frame still to come; -1 while reading a header. */
  private _missing = -1;
  /** Parts of a payload being gathered whole. */
  private _parts: Buffer[] = [];

  constructor(options: FrameDecoderOptions = {}) {
    super({ readableObjectMode: true });
    this.maxPayload = options.maxPayload ?? MAX_PAYLOAD;
    this.maxControlPayload = options.maxControlPayload ?? MAX_CONTROL_PAYLOAD;
    this.partial = options.partial ?? false;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let ptr = 0;
    while (ptr < chunk.length && !this.faulted) {
      if (this._missing < 0) {
        // Fast path: a whole header in this chunk needs no copy.
        if (this._headerFill === 0 && chunk.length - ptr >= HEADER_SIZE) {
          this._startFrame(chunk[ptr], chunk.readUInt32BE(ptr + 1));
          ptr += HEADER_SIZE;
        } else {
          const n = Math.min(HEADER_SIZE - this._headerFill, chunk.length - ptr);
          chunk.copy(this._header, this._headerFill, ptr, ptr + n);
          this._headerFill += n;
          ptr += n;
          if (this._headerFill === HEADER_SIZE) {
            this._headerFill = 0;
            this._startFrame(this._header[0], this._header.readUInt32BE(1));
          }
        }
        continue;
      }
      const n = Math.min(this._missing, chunk.length - ptr);
      this._takePayload(chunk.subarray(ptr, ptr + n));
      ptr += n;
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (!this.faulted && (this._missing >= 0 || this._headerFill > 0)) {
      this.cutShort = true;
      this._fault('the stream ended inside a frame');
    }
    done();
  }

  private _startFrame(type: number, length: number): void {
    const limit = STREAM_TYPES.has(type) ? this.maxPayload : this.maxControlPayload;
    if (length > limit) {
      this._fault(`frame of type ${type} is ${length} bytes long; the limit is ${limit}`);
      return;
    }
    this._type = type;
    this._missing = length;
    if (length === 0) this._endFrame();
  }

  private _takePayload(part: Buffer): void {
    this._missing -= part.length;
    if (this.partial && STREAM_TYPES.has(this._type)) {
      this.push({ type: this._type, payload: part } satisfies Frame);
      if (this._missing === 0) this._missing = -1;
      return;
    }
    this._parts.push(part);
    if (this._missing === 0) this._endFrame();
  }

  private _endFrame(): void {
    const parts = this._parts;
    const payload = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    this._parts = [];
    this._missing = -1;
    this.push({ type: this._type, payload } satisfies Frame);
  }

  private _fault(message: string): void {
    this.faulted = true;
    this._parts = [];
    this.push(errorFrame(ErrorCode.PROTOCOL, message));
    this.push(null);
  }
}
