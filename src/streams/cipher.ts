// Transform: CipherCore as a stream of frames, for callers that pipe.
import { Transform, type TransformCallback } from 'node:stream';
import type { Direction } from '../alphabet.js';
import { CIPHER_WINDOW, type Frame } from '../protocol.js';
import { CipherCore, type CipherOptions } from './cipher-core.js';

/**
 * Frame boundaries mean nothing here: text and key are two byte streams, and symbol i
 * of the output is made as soon as byte i of both has arrived (see CipherCore). The
 * input ending before END is a fault like any other.
 */
export class Cipher extends Transform {
  readonly core: CipherCore;

  constructor(direction: Direction, window = CIPHER_WINDOW, overwrite = false, options: Omit<CipherOptions, 'overwrite'> = {}) {
    super({ objectMode: true, highWaterMark: 4 });
    this.core = new CipherCore(direction, (frame) => this.push(frame), window, { ...options, overwrite });
  }

  get window(): number {
    return this.core.window;
  }

  get symbols(): number {
    return this.core.symbols;
  }

  get fault(): Frame | null {
    return this.core.fault;
  }

  get completed(): boolean {
    return this.core.completed;
  }

  get waitingPieces(): number {
    return this.core.waitingPieces;
  }

  override _transform(frame: Frame, _encoding: BufferEncoding, done: TransformCallback): void {
    this.core.take(frame);
    done();
  }

  override _flush(done: TransformCallback): void {
    this.core.finish();
    done();
  }
}
