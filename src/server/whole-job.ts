// A job that came whole in its first read (HELLO to END) with nothing wrong in it, answered from that read in one write: a small job, which the pipeline would cost several times over; the rest go through the pipeline, which alone words faults.
import { FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD, MAX_PAYLOAD, payloadLength } from '../protocol/frames.js';

export interface WholeAnswer {
  /** RESULT (when there are symbols) and DONE, as one buffer. */
  reply: Buffer;
  symbols: number;
}

/**
 * Why it exists: a job's pipeline (src/server/job.ts) costs some 0.5 ms of a worker's CPU
 * to set up and tear down, where a small job's whole answer costs a few microseconds; at
 * 50 connections of small jobs the pipeline alone served 0.5 to 0.8 times what the C
 * reference's fork per connection does, this answer some 2 times (docs/PERFORMANCE.md).
 *
 * The answer to the frames in `bytes` (what followed the HELLO), or null when they are
 * not a whole, faultless job: no END yet, a frame cut short, a frame of another type or
 * over its limit, a byte outside the alphabet, a key shorter than the text. Then the
 * job's pipeline takes the same bytes and answers as it always does. Frames after END
 * are ignored, as the pipeline ignores them. `table` is the direction's cipher table
 * (src/cipher/alphabet.ts cipherTable: 0 for a pair with a non-symbol).
 *
 * Linear in the bytes however they are framed, with nothing made per frame: one pass
 * checks the frames, and each stream's bytes are read where they lie when they came in
 * one part (the otp client's small job is one TEXT and one KEY frame), else copied once
 * each into a buffer of their total by a second pass.
 */
export function answerWholeJob(bytes: Buffer, table: Uint8Array): WholeAnswer | null {
  // First pass: the frames are well-formed up to END; how many bytes each stream has, and where its only part is when it has one.
  let textBytes = 0;
  let keyBytes = 0;
  let textParts = 0;
  let keyParts = 0;
  let textAt = 0;
  let keyAt = 0;
  let end = -1;
  for (let at = 0; end < 0; ) {
    if (bytes.length - at < HEADER_SIZE) return null;
    const type = bytes[at];
    const length = payloadLength(bytes, at);
    const start = at + HEADER_SIZE;
    const limit = type === FrameType.TEXT || type === FrameType.KEY ? MAX_PAYLOAD : type === FrameType.END ? MAX_CONTROL_PAYLOAD : -1;
    if (length > limit || bytes.length - start < length) return null;
    if (type === FrameType.END) end = start;
    else if (type === FrameType.TEXT) {
      textBytes += length;
      textParts++;
      textAt = start;
    } else {
      keyBytes += length;
      keyParts++;
      keyAt = start;
    }
    at = start + length;
  }
  const n = textBytes;
  if (keyBytes < n) return null;
  const reply = Buffer.allocUnsafe(n > 0 ? 2 * HEADER_SIZE + n : HEADER_SIZE);
  let at = 0;
  if (n > 0) {
    // Each stream's bytes read where they lie when they came in one part, else copied once.
    const t = textParts === 1 ? bytes.subarray(textAt, textAt + textBytes) : gather(bytes, end, FrameType.TEXT, textBytes);
    const k = keyParts === 1 ? bytes.subarray(keyAt, keyAt + keyBytes) : gather(bytes, end, FrameType.KEY, keyBytes);
    reply[0] = FrameType.RESULT;
    reply.writeUInt32BE(n, 1);
    for (let i = 0; i < n; i++) {
      const symbol = table[(t[i] << 8) | k[i]];
      if (symbol === 0) return null;
      reply[HEADER_SIZE + i] = symbol;
    }
    at = HEADER_SIZE + n;
  }
  reply[at] = FrameType.DONE;
  reply.writeUInt32BE(0, at + 1);
  return { reply, symbols: n };
}

/** The payloads of every frame of `type` before `end` (checked well-formed by the first pass), copied in order into one buffer of `total` bytes. */
function gather(bytes: Buffer, end: number, type: number, total: number): Buffer {
  const out = Buffer.allocUnsafe(total);
  let filled = 0;
  for (let at = 0; at + HEADER_SIZE < end; ) {
    const length = payloadLength(bytes, at);
    const start = at + HEADER_SIZE;
    if (bytes[at] === type) {
      if (length === 1) out[filled] = bytes[start];
      else bytes.copy(out, filled, start, start + length);
      filled += length;
    }
    at = start + length;
  }
  return out;
}
