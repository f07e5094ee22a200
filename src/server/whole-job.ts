// A job that came whole in its first read (HELLO to END) with nothing wrong in it, answered from that read in one write; the rest go through the pipeline, which alone words faults.
import { FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD, MAX_PAYLOAD } from '../protocol/frames.js';

export interface WholeAnswer {
  /** RESULT (when there are symbols) and DONE, as one buffer. */
  reply: Buffer;
  symbols: number;
}

/**
 * The answer to the frames in `bytes` (what followed the HELLO), or null when they are
 * not a whole, faultless job: no END yet, a frame cut short, a frame of another type or
 * over its limit, a byte outside the alphabet, a key shorter than the text. Then the
 * job's pipeline takes the same bytes and answers as it always does. Frames after END
 * are ignored, as the pipeline ignores them. `table` is the direction's cipher table
 * (alphabet.ts cipherTable: 0 for a pair with a non-symbol).
 */
export function answerWholeJob(bytes: Buffer, table: Uint8Array): WholeAnswer | null {
  let text: Buffer | null = null;
  let key: Buffer | null = null;
  for (let at = 0; ; ) {
    if (bytes.length - at < HEADER_SIZE) return null;
    const type = bytes[at];
    const length = bytes.readUInt32BE(at + 1);
    const start = at + HEADER_SIZE;
    if (type === FrameType.END) {
      if (length > MAX_CONTROL_PAYLOAD || bytes.length - start < length) return null;
      break;
    }
    if ((type !== FrameType.TEXT && type !== FrameType.KEY) || length > MAX_PAYLOAD || bytes.length - start < length) return null;
    const payload = bytes.subarray(start, start + length);
    if (type === FrameType.TEXT) text = text ? Buffer.concat([text, payload]) : payload;
    else key = key ? Buffer.concat([key, payload]) : payload;
    at = start + length;
  }
  const n = text?.length ?? 0;
  if (n > 0 && (!key || key.length < n)) return null;
  const reply = Buffer.allocUnsafe(n > 0 ? 2 * HEADER_SIZE + n : HEADER_SIZE);
  let at = 0;
  if (n > 0) {
    reply[0] = FrameType.RESULT;
    reply.writeUInt32BE(n, 1);
    for (let i = 0; i < n; i++) {
      const symbol = table[(text![i] << 8) | key![i]];
      if (symbol === 0) return null;
      reply[HEADER_SIZE + i] = symbol;
    }
    at = HEADER_SIZE + n;
  }
  reply[at] = FrameType.DONE;
  reply.writeUInt32BE(0, at + 1);
  return { reply, symbols: n };
}
