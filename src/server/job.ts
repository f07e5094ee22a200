// One job on its connection: the pipeline socket → deframe → cipher → frame → socket, and what it records of how the job went.
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';
import type { Direction } from '../cipher/alphabet.js';
import { BufferPool } from '../memory/buffer-pool.js';
import { JOB_READ_BUFFER } from '../protocol/capacity.js';
import { CIPHER_WINDOW, ErrorCode, errorFrame, parseError, type Frame } from '../protocol/frames.js';
import { Cipher } from '../streams/cipher.js';
import { FrameDecoder } from '../streams/frame-decoder.js';
import { FrameEncoder } from '../streams/frame-encoder.js';
import { MIN_RING, type RingMemory } from '../cipher/ring-queue.js';
import { SocketSink } from '../streams/socket-sink.js';
import { SocketSource } from '../streams/socket-source.js';

export interface JobEnd {
  /** Symbols sent back. */
  symbols: number;
  /** ok: every symbol sent; fault: ended with an ERROR frame; broken: the connection failed. */
  outcome: 'ok' | 'fault' | 'broken';
  /** What went wrong, for the log; peer-supplied text in it is not escaped yet. */
  detail?: string;
}

/** Jobs' buffers, kept for the next jobs: a few, so that an idle worker does not sit on 16 jobs' worth. */
const KEEP = 4;
const readBuffers = new BufferPool(JOB_READ_BUFFER, KEEP);
const rings = new BufferPool(CIPHER_WINDOW, KEEP);
const smallRings = new BufferPool(MIN_RING, 4 * KEEP);
/** A job's ring is small while its streams keep in step, and the whole window when they do not: both from pools. */
const ringMemory: RingMemory = {
  take: (size) => (size === CIPHER_WINDOW ? rings : smallRings).take(),
  give: (buffer) => (buffer.length === CIPHER_WINDOW ? rings : smallRings).give(buffer),
};

/**
 * The socket's reads, into the job's lent buffers (SocketSource), are cut into frames
 * (FrameDecoder), ciphered with the result written over the bytes it is made from (Cipher,
 * whose waiting bytes go into a ring of the window's size), framed again (FrameEncoder) and
 * written back (SocketSink); one error anywhere tears the whole chain down. The job ends
 * when the last frame (DONE or ERROR) has left and the sending side is closed; what the
 * client still sends after that is read and dropped by the source until the connection
 * closes. A client's ERROR frame (it abandons the job) is never echoed: an ERROR frame of
 * the server's own takes its place, and the client's message is kept for the log.
 */
export class Job {
  private readonly cipher: Cipher;
  /** The frame that stood in for the client's own ERROR, and the client's message. */
  private abandoned: { frame: Frame; message: string } | null = null;
  private settled = false;

  /** Starts the job on `socket`, whose first bytes after the HELLO are `opening`; `ended` is called once. */
  constructor(
    socket: Socket,
    direction: Direction,
    opening: Buffer,
    private readonly ended: (end: JobEnd) => void,
  ) {
    this.cipher = new Cipher(direction, { overwrite: true, ring: ringMemory });
    const source = new SocketSource({ pool: readBuffers, opening });
    const decoder = new FrameDecoder({ pairWindow: CIPHER_WINDOW, peerError: (payload) => this.abandon(payload) });
    pipeline(source, decoder, this.cipher, new FrameEncoder(), new SocketSink(socket), (err) => this.settle(err ?? null));
    source.attach(socket);
  }

  /** Ends the job with an ERROR frame behind the frames already made, unless it has ended already. */
  stop(code: ErrorCode, message: string): void {
    if (!this.settled) this.cipher.stop(errorFrame(code, message));
  }

  private abandon(payload: Buffer): Frame {
    const frame = errorFrame(ErrorCode.PROTOCOL, 'the client abandoned the job');
    this.abandoned ??= { frame, message: parseError(payload).message };
    return frame;
  }

  private settle(err: Error | null): void {
    if (this.settled) return;
    this.settled = true;
    const { cipher } = this;
    const fault = cipher.fault;
    const abandoned = this.abandoned && fault === this.abandoned.frame ? this.abandoned.message : null;
    this.ended({
      symbols: cipher.symbols,
      outcome: cipher.completed ? 'ok' : fault ? 'fault' : 'broken',
      detail:
        abandoned !== null ? `abandoned by the client: ${abandoned || '(no message)'}`
        : fault ? parseError(fault.payload).message
        : err?.message,
    });
  }
}
