// Transform: frames in, length-prefixed bytes out, each frame's header and payload as one buffer wherever the payload allows.
//
// A frame whose payload has free room before it (Frame.headroom: a header already read, or
// room its maker left) gets its header written there and leaves as one view of the
// payload's memory, no copy: one write, and over TLS one buffer encrypted where it lies. A
// small payload without room is copied behind a new header. A large one leaves as a header
// and the payload itself, two chunks that the socket's sink writes in one writev. A lent
// payload's hold (src/memory/lease.ts) goes on with the chunk that carries its bytes, or is
// given back when they are copied.
//
// The output is in object mode, each chunk a Buffer of bytes, so that the chunks reach the
// next stage as they were made: a byte stream may join chunks into a copy, and a copy would
// never give its lease back.
import { Transform, type TransformCallback } from 'node:stream';
import { Lease } from '../memory/lease.js';
import { HEADER_SIZE, type Frame } from '../protocol/frames.js';

/** Payloads shorter than this, with no room before them, are copied behind their header. */
export const COPY_BELOW = 16 * 1024;

export class FrameEncoder extends Transform {
  constructor() {
    // One frame at a time each side: a client's frames are 1 MiB buffers of its own, and
    // what the stages hold ahead of the socket is memory the pipeline would take for nothing.
    super({ objectMode: true, highWaterMark: 1 });
  }

  override _transform(frame: Frame, _encoding: BufferEncoding, done: TransformCallback): void {
    const { payload } = frame;
    if (frame.headroom) {
      const whole = Buffer.from(payload.buffer, payload.byteOffset - HEADER_SIZE, HEADER_SIZE + payload.length);
      writeHeader(whole, frame.type, payload.length);
      this.push(whole);
    } else if (payload.length < COPY_BELOW) {
      this.push(encodeFrame(frame));
      Lease.releaseView(payload);
    } else {
      this.push(frameHeader(frame));
      this.push(payload);
    }
    done();
  }
}

/** A whole frame in a new buffer. */
export function encodeFrame(frame: Frame): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + frame.payload.length);
  writeHeader(out, frame.type, frame.payload.length);
  frame.payload.copy(out, HEADER_SIZE);
  return out;
}

/** A frame's header alone, for a payload that goes out as a buffer of its own. */
export function frameHeader(frame: Frame): Buffer {
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  writeHeader(header, frame.type, frame.payload.length);
  return header;
}

/** Writes a header (type, then the payload's length, big-endian) at the start of `out`. */
export function writeHeader(out: Buffer, type: number, length: number): void {
  out[0] = type;
  out.writeUInt32BE(length, 1);
}
