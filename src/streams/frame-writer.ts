// Writable: frames onto a socket, each payload handed back (release) once the kernel has it.
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { Frame } from '../protocol/frames.js';
import { frameHeader } from './frame-encoder.js';

/**
 * Each frame is written as its `wire` buffer when it has one, else as its header and
 * payload; its payload goes back to its pool from the socket's write callback, which
 * alone knows when the bytes have left. Ends the socket's sending side when the frames end.
 */
export class FrameWriter extends Writable {
  constructor(private readonly _socket: Socket) {
    super({ objectMode: true, highWaterMark: 1 });
  }

  override _write(frame: Frame, _encoding: BufferEncoding, next: (err?: Error | null) => void): void {
    const socket = this._socket;
    let flowing: boolean;
    if (frame.wire) {
      flowing = socket.write(frame.wire, frame.release);
    } else {
      socket.cork();
      socket.write(frameHeader(frame));
      flowing = socket.write(frame.payload, frame.release);
      socket.uncork();
    }
    if (flowing) next();
    else socket.once('drain', () => next());
  }

  override _final(done: (err?: Error | null) => void): void {
    this._socket.end(() => done());
  }
}
