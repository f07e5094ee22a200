// Transform: Frame objects in, length-prefixed bytes out.
import { Transform, type TransformCallback } from 'node:stream';
import { HEADER_SIZE, type Frame } from '../protocol.js';

/** Below this a payload is copied behind its header (one write); above, the two go out apart. */
const COPY_BELOW = 16 * 1024;

export function encodeFrame(frame: Frame): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + frame.payload.length);
  writeHeader(out, frame);
  frame.payload.copy(out, HEADER_SIZE);
  return out;
}

/** A frame's header alone, for a payload that goes out as a buffer of its own. */
export function frameHeader(frame: Frame): Buffer {
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  writeHeader(header, frame);
  return header;
}

/** Writes the frame's header at the start of `out`. */
export function writeHeader(out: Buffer, frame: Frame): void {
  out[0] = frame.type;
  out.writeUInt32BE(frame.payload.length, 1);
}

export class FrameEncoder extends Transform {
  constructor() {
    super({ writableObjectMode: true });
  }

  override _transform(frame: Frame, _encoding: BufferEncoding, done: TransformCallback): void {
    if (frame.payload.length < COPY_BELOW) {
      this.push(encodeFrame(frame));
    } else {
      this.push(frameHeader(frame));
      this.push(frame.payload);
    }
    done();
  }
}
