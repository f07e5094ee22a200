// Writable: the server's frames in; RESULT bytes to the output as they come, and a newline after DONE.
import { Writable } from 'node:stream';
import { FrameType, parseError, type Frame } from '../protocol.js';

export interface ServerError {
  code: number;
  message: string;
}

/**
 * Ends quietly after DONE or an ERROR frame; which of the two came (or neither, when
 * the connection ended early) is for the client to judge from `done` and `error`.
 * Emits 'complete' once the newline after DONE has been written out.
 */
export class ResultSink extends Writable {
  done = false;
  error: ServerError | null = null;
  /** The server sent a frame no otp server sends. */
  foreign = false;
  symbols = 0;

  constructor(private readonly _out: NodeJS.WritableStream) {
    super({ objectMode: true });
  }

  override _write(frame: Frame, _encoding: BufferEncoding, next: (err?: Error | null) => void): void {
    if (this.done || this.error) return next();
    switch (frame.type) {
      case FrameType.RESULT:
        this.symbols += frame.payload.length;
        return this._emit(frame.payload, next);
      case FrameType.DONE:
        this.done = true;
        // 'complete' once the output has taken the last byte: the job is over, whatever
        // the connection still does.
        this._out.write('\n', () => this.emit('complete'));
        return next();
      case FrameType.ERROR:
        this.error = parseError(frame.payload);
        return next();
      default:
        this.foreign = true;
        this.error = { code: 0, message: `the server sent a frame of unknown type ${frame.type}` };
        return next();
    }
  }

  private _emit(bytes: Buffer, next: () => void): void {
    if (this._out.write(bytes)) next();
    else this._out.once('drain', next);
  }
}
