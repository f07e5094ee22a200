// Transform: CipherCore as a stream of frames, so that the cipher tests can pipe frames through it (the server drives CipherCore itself).
import { Transform, type TransformCallback } from 'node:stream';
import type { Direction } from '../../src/cipher/alphabet.js';
import { CIPHER_WINDOW, type Frame } from '../../src/protocol/frames.js';
import { CipherCore } from '../../src/streams/cipher-core.js';

/** The input ending before END is a fault like any other (CipherCore.finish). */
export class Cipher extends Transform {
  private readonly _core: CipherCore;

  constructor(direction: Direction, window = CIPHER_WINDOW, overwrite = false) {
    super({ objectMode: true, highWaterMark: 4 });
    this._core = new CipherCore(direction, (frame) => this.push(frame), window, { overwrite });
  }

  get waitingPieces(): number {
    return this._core.waitingPieces;
  }

  override _transform(frame: Frame, _encoding: BufferEncoding, done: TransformCallback): void {
    this._core.take(frame);
    done();
  }

  override _flush(done: TransformCallback): void {
    this._core.finish();
    done();
  }
}
