// Transform: length-prefixed bytes in, frames out; payloads passed on as views of the bytes (zero-copy) or, when small, gathered; every limit checked before anything is allocated.
//
// Why this shape. TEXT, KEY and RESULT are byte streams cut into frames whose boundaries
// mean nothing (docs/PROTOCOL.md), so their payloads are passed on in parts, as the bytes
// arrive: a view of the chunk written, never a copy, never a wait for the whole frame. A
// frame's length is checked against its type's limit as soon as its header is in, before a
// byte of it is held; a control frame (HELLO, END, DONE, ERROR) is small and is copied, so
// that it outlives the chunk, whose memory the source reads into again.
//
// A client that cuts its text and key into tiny frames must not cost the server more than
// its bytes: a view and a frame object for every byte would cost a thousand times a large
// frame's work per byte. So with `pairWindow` (the server's decoder, whose TEXT and KEY go
// to a cipher), parts of TEXT and KEY shorter than GATHER_BELOW are copied into two gather
// buffers and passed on as one frame each when the chunk ends, a gather is full, or
// something that must keep its place comes (a large part, another frame). Gathering never
// reorders a stream within itself; TEXT and KEY are gathered apart, which the cipher cannot
// tell from the real order as long as the lead of one over the other stays within the
// window it enforces. So they are gathered only while the lead they bring stays GATHER_SIZE
// clear of that window; nearer than that, each part goes on alone, in its place, and the
// cipher judges the lead exactly where it is. Without `pairWindow` (the client's decoder)
// every part is passed on as it comes, so that a reply is judged frame by frame.
//
// A malformed byte stream cannot be resynchronised: the first fault (a length over its
// limit, the input ending inside a frame) becomes an ERROR frame and the end of the output,
// after the frames before it; whatever comes after is dropped.
import { Transform, type TransformCallback } from 'node:stream';
import { BufferPool } from '../memory/buffer-pool.js';
import { Lease } from '../memory/lease.js';
import { ErrorCode, FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD, MAX_PAYLOAD, STREAM_TYPES, errorFrame, payloadLength, type Frame } from '../protocol/frames.js';

/** Stream parts shorter than this are gathered; longer ones are passed on as views. */
export const GATHER_BELOW = 4096;
/** Bytes a gather holds at most before it is passed on. */
export const GATHER_SIZE = 16 * 1024;

/** Gather buffers, each with room for a header before its bytes, lent to the frames made of them. */
const gatherPool = new BufferPool(HEADER_SIZE + GATHER_SIZE, 16);

export interface FrameDecoderOptions {
  /** Largest payload of a TEXT, KEY or RESULT frame. */
  maxPayload?: number;
  /** Largest payload of any other frame. */
  maxControlPayload?: number;
  /** TEXT and KEY are the two streams a cipher pairs, which lets neither lead by more than this many bytes: their small parts are gathered. */
  pairWindow?: number;
  /** What an ERROR frame from the peer becomes; by default it is passed on as it came. */
  peerError?: (payload: Buffer) => Frame;
}

/** Small parts of TEXT or KEY, copied together behind room for a header. */
interface Gather {
  lease: Lease;
  fill: number;
}

export class FrameDecoder extends Transform {
  readonly maxPayload: number;
  readonly maxControlPayload: number;
  /** Set once a fault has ended the output. */
  faulted = false;
  /** The fault was the input ending inside a frame (a broken connection), not a bad frame. */
  cutShort = false;
  /** The first two bytes decoded, to tell what kind of peer answered (a client's diagnosis). */
  opening: Buffer | null = null;

  private readonly _pairWindow: number | null;
  private readonly _peerError: ((payload: Buffer) => Frame) | null;
  /** A header split across chunks, and how much of it has come. */
  private readonly _header = Buffer.alloc(HEADER_SIZE);
  private _headerFill = 0;
  private _type = 0;
  /** Payload bytes of the current frame still to come; -1 while a header is read. */
  private _missing = -1;
  /** The payload of a control frame, copied as it comes. */
  private _control: Buffer | null = null;
  private _controlFill = 0;
  /** TEXT bytes decoded less KEY bytes. */
  private _lead = 0;
  /** The open gathers of TEXT and KEY. */
  private _text: Gather | null = null;
  private _key: Gather | null = null;

  constructor(options: FrameDecoderOptions = {}) {
    super({ objectMode: true, highWaterMark: 4 });
    this.maxPayload = options.maxPayload ?? MAX_PAYLOAD;
    this.maxControlPayload = options.maxControlPayload ?? MAX_CONTROL_PAYLOAD;
    this._pairWindow = options.pairWindow ?? null;
    this._peerError = options.peerError ?? null;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (!this.faulted && chunk.length > 0) {
      this.opening ??= Buffer.from(chunk.subarray(0, 2));
      const lease = Lease.of(chunk);
      this._decode(chunk, lease);
      this._passGathers();
      lease?.release();
    } else {
      Lease.releaseView(chunk);
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (!this.faulted) {
      this._passGathers();
      if (this._missing >= 0 || this._headerFill > 0) {
        this.cutShort = true;
        this._fault('the stream ended inside a frame');
      }
    }
    done();
  }

  private _decode(chunk: Buffer, lease: Lease | undefined): void {
    let at = 0;
    while (at < chunk.length && !this.faulted) {
      if (this._missing < 0 && this._headerFill === 0 && this._pairWindow !== null) {
        const past = this._gatherRun(chunk, at);
        if (past !== at) {
          at = past;
          continue;
        }
      }
      if (this._missing < 0) {
        // A whole header in this chunk is read where it is; a split one is copied together.
        if (this._headerFill === 0 && chunk.length - at >= HEADER_SIZE) {
          this._startFrame(chunk[at], payloadLength(chunk, at));
          at += HEADER_SIZE;
          // The payload follows its header in this chunk: the header's bytes are free for its frame's.
          if (this._missing > 0 && at < chunk.length && STREAM_TYPES.has(this._type)) at = this._streamPart(chunk, at, lease, lease !== undefined);
        } else {
          const n = Math.min(HEADER_SIZE - this._headerFill, chunk.length - at);
          chunk.copy(this._header, this._headerFill, at, at + n);
          this._headerFill += n;
          at += n;
          if (this._headerFill === HEADER_SIZE) {
            this._headerFill = 0;
            this._startFrame(this._header[0], payloadLength(this._header, 0));
          }
        }
      } else if (STREAM_TYPES.has(this._type)) {
        at = this._streamPart(chunk, at, lease, false);
      } else {
        at = this._controlPart(chunk, at);
      }
    }
  }

  private _startFrame(type: number, length: number): void {
    const limit = STREAM_TYPES.has(type) ? this.maxPayload : this.maxControlPayload;
    if (length > limit) return this._fault(`frame of type ${type} is ${length} bytes long; the limit is ${limit}`);
    this._type = type;
    if (STREAM_TYPES.has(type)) {
      // An empty part of a byte stream is nothing at all.
      this._missing = length === 0 ? -1 : length;
      return;
    }
    this._control = Buffer.allocUnsafe(length);
    this._controlFill = 0;
    this._missing = length;
    if (length === 0) this._endControl();
  }

  /** The part of the current stream frame at chunk[at...]: gathered, or passed on as a view. Returns where it ends. */
  private _streamPart(chunk: Buffer, at: number, lease: Lease | undefined, headroom: boolean): number {
    const type = this._type;
    const end = at + Math.min(this._missing, chunk.length - at);
    const n = end - at;
    this._missing -= n;
    if (this._missing === 0) this._missing = -1;
    const signed = type === FrameType.TEXT ? n : type === FrameType.KEY ? -n : 0;
    if (signed !== 0 && n < GATHER_BELOW && this._pairWindow !== null && Math.abs(this._lead + signed) <= this._pairWindow - GATHER_SIZE) {
      this._gather(type, chunk, at, end);
    } else {
      this._passGathers();
      lease?.hold();
      this.push({ type, payload: chunk.subarray(at, end), headroom } satisfies Frame);
    }
    this._lead += signed;
    return end;
  }

  /**
   * Whole small TEXT and KEY frames from chunk[at...] on, gathered in one loop, with
   * _streamPart's rule; returns where the run stops (at `at` when it does not start): at
   * anything else, which the general path then takes. The same work as frame by frame,
   * without a call per frame: what keeps a one-byte frame's cost near its bytes'.
   */
  private _gatherRun(chunk: Buffer, at: number): number {
    const limit = this._pairWindow! - GATHER_SIZE;
    let lead = this._lead;
    // The open gathers' memory and fill held in locals for the loop, written back when it stops.
    let text = this._text;
    let key = this._key;
    let textInto = text ? text.lease.buffer : null;
    let keyInto = key ? key.lease.buffer : null;
    let textFill = text ? text.fill : 0;
    let keyFill = key ? key.fill : 0;
    const end = chunk.length;
    while (end - at >= HEADER_SIZE) {
      const type = chunk[at];
      if (type !== FrameType.TEXT && type !== FrameType.KEY) break;
      const length = payloadLength(chunk, at);
      if (length >= GATHER_BELOW || end - at - HEADER_SIZE < length) break;
      const isText = type === FrameType.TEXT;
      const signed = isText ? length : -length;
      if (Math.abs(lead + signed) > limit) break;
      const from = at + HEADER_SIZE;
      if (length > 0) {
        // A full gather passes both on: neither then holds more than GATHER_SIZE.
        if ((isText ? textFill : keyFill) + length > GATHER_SIZE) {
          if (text) text.fill = textFill;
          if (key) key.fill = keyFill;
          this._passGathers();
          text = key = null;
          textInto = keyInto = null;
          textFill = keyFill = 0;
        }
        let into = isText ? textInto : keyInto;
        if (!into) {
          const gather = this._openGather(type);
          into = gather.lease.buffer;
          if (isText) {
            text = gather;
            textInto = into;
          } else {
            key = gather;
            keyInto = into;
          }
        }
        const to = HEADER_SIZE + (isText ? textFill : keyFill);
        if (length === 1) into[to] = chunk[from];
        else chunk.copy(into, to, from, from + length);
        if (isText) textFill += length;
        else keyFill += length;
      }
      lead += signed;
      at = from + length;
    }
    if (text) text.fill = textFill;
    if (key) key.fill = keyFill;
    this._lead = lead;
    return at;
  }

  /** A new gather for `type`, lent from the pool to the frame it will become. */
  private _openGather(type: number): Gather {
    const buffer = gatherPool.take();
    const gather = { lease: new Lease(buffer, () => gatherPool.give(buffer)), fill: 0 };
    if (type === FrameType.TEXT) this._text = gather;
    else this._key = gather;
    return gather;
  }

  private _gather(type: number, chunk: Buffer, from: number, to: number): void {
    const n = to - from;
    let gather = type === FrameType.TEXT ? this._text : this._key;
    // A full gather passes both on: neither then holds more than GATHER_SIZE.
    if (gather && gather.fill + n > GATHER_SIZE) {
      this._passGathers();
      gather = null;
    }
    gather ??= this._openGather(type);
    const into = gather.lease.buffer;
    const at = HEADER_SIZE + gather.fill;
    if (n <= 8) for (let i = 0; i < n; i++) into[at + i] = chunk[from + i];
    else chunk.copy(into, at, from, to);
    gather.fill += n;
  }

  /** The open gathers as one frame each, TEXT first: either order keeps each stream's own. */
  private _passGathers(): void {
    const text = this._text;
    const key = this._key;
    this._text = this._key = null;
    if (text) this._passGather(FrameType.TEXT, text);
    if (key) this._passGather(FrameType.KEY, key);
  }

  private _passGather(type: number, gather: Gather): void {
    gather.lease.hold();
    this.push({ type, payload: gather.lease.buffer.subarray(HEADER_SIZE, HEADER_SIZE + gather.fill), headroom: true } satisfies Frame);
  }

  private _controlPart(chunk: Buffer, at: number): number {
    const n = Math.min(this._missing, chunk.length - at);
    chunk.copy(this._control!, this._controlFill, at, at + n);
    this._controlFill += n;
    this._missing -= n;
    if (this._missing === 0) this._endControl();
    return at + n;
  }

  private _endControl(): void {
    const payload = this._control!;
    this._control = null;
    this._missing = -1;
    this._passGathers();
    const frame: Frame = { type: this._type, payload };
    this.push(this._type === FrameType.ERROR && this._peerError ? this._peerError(payload) : frame);
  }

  private _fault(message: string): void {
    this._passGathers();
    this.faulted = true;
    this._control = null;
    this.push(errorFrame(ErrorCode.PROTOCOL, message));
    this.push(null);
  }
}
