// Transform: TEXT and KEY frames in (the two byte streams), RESULT frames out as the symbols are made, then DONE, or ERROR at the first fault.
//
// The cipher's logic is CipherCore's (src/cipher/cipher-core.ts); this is the pipeline's
// stage around it, and the place where lent input is given back. A TEXT or KEY payload lent
// by the source (src/memory/lease.ts) is done with once take() returns: its bytes are
// ciphered, copied into the ring to wait for their partners, or dropped once the job has
// ended. A RESULT written over it is a view of the same memory that outlives the take, so
// it takes a hold of its own when it is pushed: the input's own hold is given back only
// after take() returns, since the cipher may still be reading the rest of the input when
// the RESULT's consumer lets it go.
import { Transform, type TransformCallback } from 'node:stream';
import type { Direction } from '../cipher/alphabet.js';
import { Lease } from '../memory/lease.js';
import { FrameType, type Frame } from '../protocol/frames.js';
import { CipherCore, type CipherOptions } from '../cipher/cipher-core.js';

export class Cipher extends Transform {
  private readonly _core: CipherCore;
  /** The lease of the payload being taken, while it is. */
  private _taking: Lease | undefined;

  constructor(direction: Direction, options: CipherOptions = {}) {
    super({ objectMode: true, highWaterMark: 4 });
    this._core = new CipherCore(direction, (frame) => this._out(frame), options);
  }

  /** Symbols sent so far. */
  get symbols(): number {
    return this._core.symbols;
  }

  /** The ERROR frame that ended the output, if one did. */
  get fault(): Frame | null {
    return this._core.fault;
  }

  /** END was met and every symbol sent. */
  get completed(): boolean {
    return this._core.completed;
  }

  /** The output has ended (DONE or ERROR): input from now on is dropped. */
  get ended(): boolean {
    return this._core.ended;
  }

  /** Pieces held waiting for a partner: at most two stretches of the ring, however the bytes were cut. */
  get waitingPieces(): number {
    return this._core.waitingPieces;
  }

  /** Ends the output now with `fault`, behind the frames already made (an idle timeout, a job shed), unless it has ended. */
  stop(fault: Frame): void {
    this._core.take(fault);
  }

  override _transform(frame: Frame, _encoding: BufferEncoding, done: TransformCallback): void {
    const lease = frame.type === FrameType.TEXT || frame.type === FrameType.KEY ? Lease.of(frame.payload) : undefined;
    this._taking = lease;
    this._core.take(frame);
    this._taking = undefined;
    lease?.release();
    done();
  }

  override _flush(done: TransformCallback): void {
    this._core.finish();
    done();
  }

  /** Torn down (its pipeline failed, or ended before its input did): the ring's memory goes back. */
  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this._core.release();
    done(err);
  }

  private _out(frame: Frame | null): void {
    if (frame === null) return void this.push(null);
    if (this._taking && frame.type === FrameType.RESULT && Lease.of(frame.payload) === this._taking) this._taking.hold();
    this.push(frame);
  }
}
