// Length-prefixed bytes in, Frame objects out through a callback: the decoding without a stream around it.
import { ErrorCode, HEADER_SIZE, MAX_CONTROL_PAYLOAD, MAX_PAYLOAD, STREAM_TYPES, errorFrame, type Frame } from '../protocol/frames.js';

export interface FrameParserOptions {
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
 * A malformed byte stream cannot be resynchronised, so the parser answers the first
 * fault with an ERROR frame and ignores whatever arrives after it. Payload parts are
 * views of the chunks written: valid as long as the chunk's memory is.
 */
export class FrameParser {
  readonly maxPayload: number;
  readonly maxControlPayload: number;
  readonly partial: boolean;
  /** Set once a fault has been reported. */
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

  constructor(
    private readonly _onFrame: (frame: Frame) => void,
    options: FrameParserOptions = {},
  ) {
    this.maxPayload = options.maxPayload ?? MAX_PAYLOAD;
    this.maxControlPayload = options.maxControlPayload ?? MAX_CONTROL_PAYLOAD;
    this.partial = options.partial ?? false;
  }

  write(chunk: Buffer): void {
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
  }

  /** The bytes have ended: a fault when they stopped inside a frame. */
  end(): void {
    if (!this.faulted && (this._missing >= 0 || this._headerFill > 0)) {
      this.cutShort = true;
      this._fault('the stream ended inside a frame');
    }
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
      if (this._missing === 0) this._missing = -1;
      this._onFrame({ type: this._type, payload: part } satisfies Frame);
      return;
    }
    // A part the frame does not end in must outlive its chunk, whose memory may be read into again: a copy (control frames are small).
    this._parts.push(this._missing > 0 ? Buffer.from(part) : part);
    if (this._missing === 0) this._endFrame();
  }

  private _endFrame(): void {
    const parts = this._parts;
    // Control frames are small and rare: always a copy, so that they outlive the chunk.
    const payload = parts.length === 1 && STREAM_TYPES.has(this._type) ? parts[0] : Buffer.concat(parts);
    this._parts = [];
    this._missing = -1;
    this._onFrame({ type: this._type, payload } satisfies Frame);
  }

  private _fault(message: string): void {
    this.faulted = true;
    this._parts = [];
    this._onFrame(errorFrame(ErrorCode.PROTOCOL, message));
  }
}
