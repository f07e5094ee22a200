// Transform: length-prefixed bytes in, Frame objects out (FrameParser as a stream, for the tests' fake servers and clients); a fault becomes an ERROR frame and the end.
import { Transform, type TransformCallback } from 'node:stream';
import { FrameParser, type FrameParserOptions } from '../../src/streams/frame-parser.js';

export type FrameDecoderOptions = FrameParserOptions;

/**
 * FrameParser as a stream. It never errors itself: after a fault's ERROR frame its
 * output ends, and the connection's other stages decide what the fault costs.
 */
export class FrameDecoder extends Transform {
  private readonly _parser: FrameParser;

  constructor(options: FrameDecoderOptions = {}) {
    super({ readableObjectMode: true, readableHighWaterMark: 4 });
    this._parser = new FrameParser((frame) => {
      this.push(frame);
      if (this._parser.faulted) this.push(null);
    }, options);
  }

  get maxPayload(): number {
    return this._parser.maxPayload;
  }

  get maxControlPayload(): number {
    return this._parser.maxControlPayload;
  }

  get partial(): boolean {
    return this._parser.partial;
  }

  /** Set once a fault has ended the output. */
  get faulted(): boolean {
    return this._parser.faulted;
  }

  /** The fault was the input ending inside a frame (a broken connection), not a bad frame. */
  get cutShort(): boolean {
    return this._parser.cutShort;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this._parser.write(chunk);
    done();
  }

  override _flush(done: TransformCallback): void {
    this._parser.end();
    done();
  }
}
