// Writable: chunks of bytes onto a socket, each lent chunk's lease given back from the callback of the write that took it; the socket's sending side ends with the chunks, and the sink finishes once its input has ended too.
//
// The write's callback is the one place that knows when the kernel has the bytes, so it is
// where a lent chunk (src/memory/lease.ts) lets go of its memory. The chunks of one turn of
// the event loop (the frames one read made) are corked together and leave in one writev. The
// sink takes more while the socket holds at most `limit` bytes it has not sent: lent chunks
// are bounded by their source's buffers anyway; the limit bounds the others (copies, chunks
// of Node's own), which nothing else would.
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { Lease } from '../memory/lease.js';

/** Unsent bytes the socket may hold before the sink waits for it to drain: one read's worth. */
export const SINK_LIMIT = 1 << 20;

export class SocketSink extends Writable {
  private _corked = false;

  constructor(
    private readonly _socket: Socket,
    private readonly _limit = SINK_LIMIT,
  ) {
    super({ objectMode: true, highWaterMark: 1 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, next: (err?: Error | null) => void): void {
    this._send(chunk);
    this._then(next);
  }

  override _writev(chunks: { chunk: Buffer }[], next: (err?: Error | null) => void): void {
    for (const { chunk } of chunks) this._send(chunk);
    this._then(next);
  }

  override _final(done: (err?: Error | null) => void): void {
    const socket = this._socket;
    socket.end(() => {
      if (socket.readableEnded) return void setImmediate(done);
      socket.once('end', () => setImmediate(done));
    });
  }

  private _send(chunk: Buffer): void {
    if (!this._corked) {
      this._corked = true;
      this._socket.cork();
      process.nextTick(() => {
        this._corked = false;
        this._socket.uncork();
      });
    }
    const lease = Lease.of(chunk);
    this._socket.write(chunk, lease && (() => lease.release()));
  }

  private _then(next: () => void): void {
    if (this._socket.writableLength <= this._limit || this._socket.destroyed) return next();
    this._socket.once('drain', () => next());
  }
}
