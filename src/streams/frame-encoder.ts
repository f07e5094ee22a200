// Frames as length-prefixed bytes: a whole frame, or its header alone.
import { HEADER_SIZE, type Frame } from '../protocol/frames.js';

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
