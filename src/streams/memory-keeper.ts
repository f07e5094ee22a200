// Pass-through stage that keeps a streaming process's memory flat: frees dead buffers while young.
import { Transform, type TransformCallback } from 'node:stream';
import { collectYoungGarbage } from '../node-internals.js';
import type { Frame } from '../protocol.js';

/**
 * Node gives every socket read a new buffer, and V8 frees the memory behind dead buffers
 * only once some 32 to 64 MiB of it has piled up, or when the JavaScript heap fills,
 * which a loop that moves bytes hardly touches. A streaming job would so sit tens of MiB
 * above what it uses. This stage passes frames on unchanged and, every `interval` payload
 * bytes, runs a young-generation collection, which frees the buffers that died young for
 * a fraction of a millisecond. Put it where the buffers are already dead or nearly so:
 * the survivors of a young collection move to the old generation, freed much later.
 */
export class MemoryKeeper extends Transform {
  private _since = 0;

  constructor(private readonly _interval = 4 << 20) {
    super({ objectMode: true });
  }

  override _transform(frame: Frame, _encoding: BufferEncoding, done: TransformCallback): void {
    this._since += frame.payload.length;
    if (this._since >= this._interval) {
      this._since = 0;
      collectYoungGarbage();
    }
    done(null, frame);
  }
}
