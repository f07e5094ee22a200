// One job: socket → frame decoder → cipher → memory keeper → frame encoder → socket, and how it ended.
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';
import type { Direction } from '../alphabet.js';
import { CIPHER_WINDOW, ErrorCode, errorFrame, FrameType, parseError, type Frame } from '../protocol.js';
import { Cipher } from '../streams/cipher.js';
import { FrameDecoder } from '../streams/frame-decoder.js';
import { FrameEncoder } from '../streams/frame-encoder.js';
import { MemoryKeeper } from '../streams/memory-keeper.js';

export interface JobEnd {
  /** Symbols sent back. */
  symbols: number;
  /** ok: every symbol sent; fault: ended with an ERROR frame; broken: the connection failed. */
  outcome: 'ok' | 'fault' | 'broken';
  /** What went wrong, for the log; peer-supplied text in it is not escaped yet. */
  detail?: string;
}

/**
 * A client's ERROR frame (it abandons the job) is never echoed: it goes on down the
 * pipeline as an ERROR frame of the server's own, and the client's message is kept for
 * the log. An empty payload, with no code at all, is handled like any other.
 */
class JobDecoder extends FrameDecoder {
  /** The message of the client's ERROR frame, once one came. */
  abandoned: string | null = null;

  override push(frame: Frame | null, encoding?: BufferEncoding): boolean {
    if (frame && frame.type === FrameType.ERROR && !this.faulted && this.abandoned === null) {
      this.abandoned = parseError(frame.payload).message;
      return super.push(errorFrame(ErrorCode.PROTOCOL, 'the client abandoned the job'));
    }
    return super.push(frame, encoding);
  }
}

export class Job {
  private readonly cipher: Cipher;
  private readonly decoder = new JobDecoder({ partial: true });

  /** Starts the job on `socket`, whose first bytes after the HELLO are `rest`; `ended` is called once. */
  constructor(socket: Socket, direction: Direction, rest: Buffer, ended: (end: JobEnd) => void) {
    this.cipher = new Cipher(direction, CIPHER_WINDOW, true);
    // The handshake read in flowing mode: stop, give back what it read past the HELLO, and let the pipeline read on.
    socket.pause();
    if (rest.length > 0) socket.unshift(rest);
    // A tiny job's RESULT and DONE leave in one write: the end of the job uncorks; a long job, the next turn of the loop.
    socket.cork();
    setImmediate(() => socket.writableCorked && socket.uncork());
    pipeline(socket, this.decoder, this.cipher, new MemoryKeeper(), new FrameEncoder(), socket, (err) => {
      socket.destroy();
      const { cipher, decoder } = this;
      const fault = cipher.fault;
      ended({
        symbols: cipher.symbols,
        outcome: cipher.completed ? 'ok' : fault ? 'fault' : 'broken',
        detail:
          decoder.abandoned !== null ? `abandoned by the client: ${decoder.abandoned || '(no message)'}`
          : fault ? parseError(fault.payload).message
          : err?.message,
      });
    });
  }

  /** Ends the job with an ERROR frame behind the frames already made, unless it has ended already. */
  stop(code: ErrorCode, message: string): void {
    const { cipher } = this;
    if (!cipher.fault && !cipher.completed && cipher.writable) cipher.write(errorFrame(code, message));
  }
}
