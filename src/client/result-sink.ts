// Writable: the server's frames in; checked RESULT bytes to the output as they come, and a newline after DONE.
import { Writable } from 'node:stream';
import { Lease } from '../memory/lease.js';
import { FrameType, parseError, type Frame } from '../protocol/frames.js';
import type { ReplyCheck } from './reply-check.js';

export interface ServerError {
  code: number;
  message: string;
}

/**
 * Emits 'complete' once the newline after DONE has been written out. An ERROR frame, or a
 * reply the check refuses, ends the sink at once with an error, whatever the connection
 * still does; which of the two it was is for the client to judge from `error` and `fault`.
 */
export class ResultSink extends Writable {
  done = false;
  error: ServerError | null = null;
  /** What the check found wrong with the reply, if anything. */
  fault: string | null = null;
  /** The server sent a frame no otp server sends. */
  foreign = false;
  symbols = 0;

  constructor(
    private readonly _out: NodeJS.WritableStream & { writableLength: number },
    private readonly _check: ReplyCheck,
  ) {
    super({ objectMode: true });
  }

  override _write(frame: Frame, _encoding: BufferEncoding, next: (err?: Error | null) => void): void {
    if (this.done || frame.type !== FrameType.RESULT) Lease.releaseView(frame.payload);
    if (this.done) return next();
    switch (frame.type) {
      case FrameType.RESULT:
        return this._result(frame.payload, next);
      case FrameType.DONE: {
        const fault = this._check.done();
        if (fault) return this._refuse(fault, next);
        this.done = true;
        // 'complete' once the output has taken the last byte: the job is over, whatever
        // the connection still does.
        this._out.write('\n', () => this.emit('complete'));
        return next();
      }
      case FrameType.ERROR:
        this.error = parseError(frame.payload);
        return next(new Error(this.error.message));
      default:
        this.foreign = true;
        this.error = { code: 0, message: `the server sent a frame of unknown type ${frame.type}` };
        return next(new Error(this.error.message));
    }
  }

  /** A RESULT payload the check accepts goes to the output; one it refuses, none of it. */
  private _result(payload: Buffer, next: (err?: Error | null) => void): void {
    const fault = this._check.result(payload);
    if (fault) {
      Lease.releaseView(payload);
      return this._refuse(fault, next);
    }
    this.symbols += payload.length;
    this._emit(payload, next);
  }

  private _refuse(fault: string, next: (err: Error) => void): void {
    this.fault = fault;
    next(new Error(fault));
  }

  /**
   * Writes a RESULT payload, whose lease (src/memory/lease.ts) is given back once the
   * output has taken it; the next frame is taken at once while the output keeps up (a
   * file, a pipe with room), else once it has drained.
   */
  private _emit(bytes: Buffer, next: () => void): void {
    const flowing = this._out.write(bytes, () => Lease.releaseView(bytes));
    if (flowing || this._out.writableLength === 0) next();
    else this._out.once('drain', next);
  }
}
