// One job on its connection: the socket's reads parsed into frames, the cipher, RESULT frames written back, and how it ended.
import type { Socket } from 'node:net';
import type { Direction } from '../cipher/alphabet.js';
import { BufferPool } from '../memory/buffer-pool.js';
import { collectYoungGarbage, readIntoBuffer } from '../node-internals.js';
import { CIPHER_WINDOW, ErrorCode, errorFrame, FrameType, parseError, type Frame } from '../protocol/frames.js';
import { JOB_READ_BUFFER } from '../protocol/capacity.js';
import { CipherCore } from '../streams/cipher-core.js';
import { encodeFrame, frameHeader } from '../streams/frame-encoder.js';
import { FrameParser } from '../streams/frame-parser.js';

export interface JobEnd {
  /** Symbols sent back. */
  symbols: number;
  /** ok: every symbol sent; fault: ended with an ERROR frame; broken: the connection failed. */
  outcome: 'ok' | 'fault' | 'broken';
  /** What went wrong, for the log; peer-supplied text in it is not escaped yet. */
  detail?: string;
}

/** Below this a payload is copied behind its header; above, the two go out apart (one writev). */
const COPY_BELOW = 16 * 1024;
/** Fresh read buffers (a TLS socket's) between two young-generation collections: see collectFresh. */
const COLLECT_EVERY = 1 << 20;

/** Jobs' buffers, kept for the next jobs: a few, so that an idle worker does not sit on 16 jobs' worth. */
const KEEP = 4;
const readBuffers = new BufferPool(JOB_READ_BUFFER, KEEP);
const rings = new BufferPool(CIPHER_WINDOW, KEEP);

/**
 * A plain socket reads into one buffer of the job's (readIntoBuffer), and the result is
 * written over the key or text bytes it was made from, in that same buffer: nothing is
 * allocated per read, and so nothing is left for the collector. The buffer is read into
 * again only once the socket has taken every write made from it: while writes wait, the
 * socket is paused. The cipher copies the bytes that wait for a partner into a ring of
 * its own (CipherOptions.ring). A TLS socket reads into buffers of its own instead
 * ('data'), and young collections every COLLECT_EVERY bytes free them while they are
 * young, as they die.
 *
 * The input after the output has ended (DONE or ERROR) is read and dropped until the
 * client half-closes; the job ends when both directions have, or the connection fails.
 * A client's ERROR frame (it abandons the job) is never echoed: an ERROR frame of the
 * server's own takes its place, and the client's message is kept for the log.
 */
export class Job {
  private readonly cipher: CipherCore;
  private readonly parser = new FrameParser((frame) => this.take(frame), { partial: true });
  /** Where the cipher keeps the bytes that wait for a partner. */
  private readonly ring: Buffer;
  /** The buffer the socket reads into, when it does (plain TCP). */
  private readBuffer: Buffer | null = null;
  /** The message of the client's ERROR frame, once one came. */
  private abandoned: string | null = null;
  private paused = false;
  private inputEnded = false;
  private outputFinished = false;
  private settled = false;
  private freshBytes = 0;

  /** Starts the job on `socket`, whose first bytes after the HELLO are `rest`; `ended` is called once. */
  constructor(
    private readonly socket: Socket,
    direction: Direction,
    rest: Buffer,
    private readonly ended: (end: JobEnd) => void,
  ) {
    this.ring = rings.take();
    this.cipher = new CipherCore(direction, (frame) => this.send(frame), CIPHER_WINDOW, { overwrite: true, ring: this.ring });
    socket.on('error', (err) => this.settle(err));
    socket.once('close', () => this.settle(new Error('the connection closed before the job ended')));
    socket.once('end', () => this.inputEnd());
    socket.once('finish', () => {
      this.outputFinished = true;
      if (this.inputEnded) this.settle(null);
    });
    // From the next read on; the socket is flowing, and 'data' brings whatever it holds already.
    if (!(socket as { encrypted?: boolean }).encrypted) {
      const buffer = readBuffers.take();
      if (readIntoBuffer(socket, buffer, (bytes) => this.feed(buffer.subarray(0, bytes)))) this.readBuffer = buffer;
      else readBuffers.give(buffer);
    }
    // Only once reads go into `buffer`: before that, pause() would not stop the handle.
    this.feed(rest);
    socket.on('data', (chunk: Buffer) => {
      this.collectFresh(chunk.length);
      this.feed(chunk);
    });
  }

  /** Ends the job with an ERROR frame behind the frames already made, unless it has ended already. */
  stop(code: ErrorCode, message: string): void {
    if (!this.settled) this.cipher.take(errorFrame(code, message));
  }

  /** A read's bytes: every frame they finish goes out in one write (one writev). */
  private feed(bytes: Buffer): void {
    if (this.cipher.ended || bytes.length === 0) return;
    const { socket } = this;
    socket.cork();
    this.parser.write(bytes);
    socket.uncork();
    // A read buffer of ours must not be read into while a write waits on it; reads into
    // buffers of their own (TLS) may run ahead of the writes by one read buffer's worth.
    const waiting = socket.writableLength > (this.readBuffer ? 0 : JOB_READ_BUFFER);
    if (waiting && !this.paused) {
      this.paused = true;
      socket.pause();
    }
  }

  private take(frame: Frame): void {
    // Once the output has ended the input is no longer read into frames (feed), so a later ERROR frame is not looked at either.
    if (frame.type === FrameType.ERROR && !this.parser.faulted && !this.cipher.ended && this.abandoned === null) {
      this.abandoned = parseError(frame.payload).message;
      frame = errorFrame(ErrorCode.PROTOCOL, 'the client abandoned the job');
    }
    this.cipher.take(frame);
  }

  private send(frame: Frame | null): void {
    const { socket } = this;
    if (frame === null) return void socket.end();
    if (frame.payload.length < COPY_BELOW) {
      socket.write(encodeFrame(frame), this.written);
    } else {
      socket.write(frameHeader(frame));
      socket.write(frame.payload, this.written);
    }
  }

  /** A write is done: once none waits, reading goes on. */
  private readonly written = (): void => {
    if (this.paused && this.socket.writableLength === 0 && !this.settled) {
      this.paused = false;
      this.socket.resume();
    }
  };

  private inputEnd(): void {
    this.inputEnded = true;
    this.parser.end();
    this.cipher.finish();
    if (this.outputFinished) this.settle(null);
  }

  /**
   * Socket reads into buffers of Node's own are dead once their frames are through, but
   * V8 frees the memory behind them only when much of it has piled up: a young
   * collection every COLLECT_EVERY bytes keeps the process flat (see node-internals).
   */
  private collectFresh(bytes: number): void {
    this.freshBytes += bytes;
    if (this.freshBytes < COLLECT_EVERY) return;
    this.freshBytes = 0;
    collectYoungGarbage();
  }

  private settle(err: Error | null): void {
    if (this.settled) return;
    this.settled = true;
    this.socket.destroy();
    if (this.readBuffer) readBuffers.give(this.readBuffer);
    this.readBuffer = null;
    rings.give(this.ring);
    const { cipher } = this;
    const fault = cipher.fault;
    this.ended({
      symbols: cipher.symbols,
      outcome: cipher.completed ? 'ok' : fault ? 'fault' : 'broken',
      detail:
        this.abandoned !== null ? `abandoned by the client: ${this.abandoned || '(no message)'}`
        : fault ? parseError(fault.payload).message
        : err?.message,
    });
  }
}
