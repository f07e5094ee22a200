// Readable: a socket's bytes, read into lent buffers of a pool and passed on as views of them (zero-copy), never into memory a view in flight still covers.
//
// Why. A socket that Node reads for us gets a fresh buffer for every read (64 KiB at most),
// which the collector must then free: at a job's rate that was most of a worker's CPU (see
// src/node-internals.ts). Here the socket reads into a buffer of ours through `onread`: the
// public option of net.connect and tls.connect, which src/node-internals.ts sets on a socket
// Node made itself (an accepted one, and the TLS socket over it).
//
// The buffer is lent (src/memory/lease.ts): what is read is passed on as a view, which stays
// in flight until the last stage's write has taken the bytes made from it. Reads go into the
// buffer one after another, so the socket reads on while earlier views are in flight; a
// buffer with no room left is read into again from its start once all its views are back,
// and meanwhile the source reads into a second buffer from the pool. With both in flight
// (the peer does not read what the pipeline sends back), reading stops until one comes back.
// Node asks for the next buffer after every read, so the one it holds is always one nobody
// else uses: free room in a lent buffer, or PARKING, whose bytes are copied out at once
// should a read come while reading is meant to be stopped.
//
// The reads of one turn of the event loop (a TLS socket's records, 16 KiB each) lie side by
// side and are passed on together when the loop turns: the stages see a few large chunks
// instead of many small ones. A read of MIN_ROOM or more is large enough alone: it is passed
// on at once, while its bytes are still in the cache, and the next read begins on a
// READ_ALIGN boundary. The kernel copies a socket's bytes into user memory with `rep movsb`,
// which on this project's machine (AMD EPYC) runs far slower into a destination off a
// cache line: a plain 64 MiB job cost its worker 111.7 ms of CPU with every read appended
// where the last ended, 98.2 ms with large reads passed on and the next aligned, and 108.2
// with them passed on but not aligned (medians of 40 alternating jobs; perf put the
// difference in the kernel's _copy_to_iter and in memmove).
//
// A socket that cannot read into our buffers (where readIntoBuffer is refused) is read from
// its 'data' events: chunks of Node's own, lent by nobody, passed on as they come. Either way
// the source ends with the socket's input and fails with it. It never closes the socket,
// which belongs to whoever accepted or opened it: once the source is done, what the socket
// still reads is dropped.
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { BufferPool } from '../memory/buffer-pool.js';
import { Lease } from '../memory/lease.js';
import { readIntoBuffer, type OnRead } from '../node-internals.js';

/** The least room worth reading into; a buffer with less left is done with until its views are back. */
export const MIN_ROOM = 64 << 10;
/** Where in a buffer the read after a large one begins: a multiple of a cache line. */
export const READ_ALIGN = 64;
/** Buffers one source reads into at most: one in flight while the socket reads into the other. */
export const BUFFERS_PER_SOURCE = 2;
/** Where the socket reads while every buffer is in flight, and once the source is done; never lent. */
const PARKING = Buffer.allocUnsafe(MIN_ROOM);

export interface SocketSourceOptions {
  /** Where the buffers come from, and go back to once the socket can no longer read into them. */
  pool: BufferPool;
  /** Bytes that came before the source took over the socket (what followed the HELLO): passed on first. */
  opening?: Buffer;
}

export class SocketSource extends Readable {
  /** For net.connect or tls.connect; attach() sets it on an accepted socket. */
  readonly onread: OnRead = {
    buffer: () => this._next,
    callback: (bytes, buffer) => this._took(bytes, buffer),
  };

  private readonly _pool: BufferPool;
  private _socket: Socket | null = null;
  /** The buffers read into, the current one first. */
  private readonly _leases: Lease[] = [];
  /** Where in the current buffer the bytes not passed on yet begin, and where they end (the next read goes there). */
  private _pendingFrom = 0;
  private _at = 0;
  private _flushScheduled = false;
  /** What the socket reads into next: room in the current buffer, or PARKING. */
  private _next: Buffer;
  /** The consumer takes more (from _read until a push says it is full). */
  private _wanted = true;
  /** Every buffer is in flight: reading waits for one to come back. */
  private _stalled = false;
  private _paused = false;
  /** Nothing more is passed on: the input ended, or the source was destroyed. */
  private _done = false;
  /** The socket reads into our buffers no more (it closed, its input ended, or it never did). */
  private _detached = false;

  constructor(options: SocketSourceOptions) {
    super({ objectMode: true });
    this._pool = options.pool;
    // No buffer until a read needs one: the first read goes into PARKING and is copied out,
    // so that a job whose bytes all came before the source took over (a small job) takes none.
    this._next = PARKING;
    if (options.opening && options.opening.length > 0) this.push(options.opening);
  }

  /**
   * Takes over `socket`'s input: one connected with `onread` (then `connectedWithOnread`),
   * or one Node made, which readIntoBuffer makes read into our buffers where it can.
   */
  attach(socket: Socket, connectedWithOnread = false): void {
    this._socket = socket;
    socket.on('end', () => this._end());
    // What came before a failure goes on before it: a reply's ERROR frame, then the reset.
    socket.on('error', (err) => {
      this._flush();
      this.destroy(err);
    });
    socket.on('close', () => {
      this._flush();
      this._detach();
      if (!this._done) this.destroy(new Error('the connection closed before its input ended'));
    });
    if (connectedWithOnread || readIntoBuffer(socket, this.onread)) return;
    this._detach();
    socket.on('data', (chunk: Buffer) => {
      if (!this._done) this._pass(chunk);
    });
  }

  /** This source's buffers still in flight: none once a finished pipeline's last bytes have left. */
  get buffersInFlight(): number {
    return this._leases.filter((lease) => !lease.free).length;
  }

  override _read(): void {
    this._wanted = true;
    this._resume();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this._done = true;
    this._next = PARKING;
    done(err);
  }

  private _took(bytes: number, buffer: Uint8Array): void {
    if (buffer === PARKING) {
      // Read while reading was meant to be stopped: copied out. After the end: dropped.
      if (!this._done) {
        this._flush();
        this._pass(Buffer.from(PARKING.subarray(0, bytes)));
      }
    } else if (!this._done) {
      this._at += bytes;
      if (bytes >= MIN_ROOM) {
        this._flush();
        this._at = this._pendingFrom = Math.min(alignUp(this._at), this._leases[0].buffer.length);
      } else {
        this._scheduleFlush();
      }
    }
    this._next = this._done ? PARKING : this._room();
  }

  /** Room for the next read: after the last one, else at the start of a buffer whose views are all back. */
  private _room(): Buffer {
    const current = this._leases[0]?.buffer;
    if (current && current.length - this._at >= MIN_ROOM) return current.subarray(this._at);
    this._flush();
    const free = this._leases.find((lease) => lease.free) ?? (this._leases.length < BUFFERS_PER_SOURCE ? this._lend() : null);
    if (!free) {
      this._stalled = true;
      this._pause();
      return PARKING;
    }
    this._leases.splice(this._leases.indexOf(free), 1);
    this._leases.unshift(free);
    this._pendingFrom = this._at = 0;
    return free.buffer;
  }

  private _lend(): Lease {
    const lease: Lease = new Lease(this._pool.take(), () => this._freed(lease));
    this._leases.push(lease);
    return lease;
  }

  private _freed(lease: Lease): void {
    if (this._detached) {
      this._leases.splice(this._leases.indexOf(lease), 1);
      this._pool.give(lease.buffer);
      return;
    }
    if (!this._stalled) return;
    this._stalled = false;
    this._resume();
  }

  private _scheduleFlush(): void {
    if (this._flushScheduled) return;
    this._flushScheduled = true;
    setImmediate(() => {
      this._flushScheduled = false;
      this._flush();
    });
  }

  /** Passes on what was read into the current buffer since the last time, as one view. */
  private _flush(): void {
    if (this._at === this._pendingFrom || this._done) return;
    const lease = this._leases[0];
    const view = lease.buffer.subarray(this._pendingFrom, this._at);
    this._pendingFrom = this._at;
    lease.hold();
    this._pass(view);
  }

  private _pass(chunk: Buffer): void {
    if (this.push(chunk)) return;
    this._wanted = false;
    this._pause();
  }

  private _end(): void {
    if (this._done) return;
    this._flush();
    this._done = true;
    this._next = PARKING;
    this.push(null);
    this._detach();
  }

  private _pause(): void {
    if (this._paused || !this._socket) return;
    this._paused = true;
    this._socket.pause();
  }

  private _resume(): void {
    if (!this._paused || this._stalled || !this._wanted || this._done) return;
    this._paused = false;
    this._socket!.resume();
  }

  /** Each buffer goes back to the pool as soon as its views are back, and no read can come into it. */
  private _detach(): void {
    if (this._detached) return;
    this._detached = true;
    for (const lease of [...this._leases]) {
      if (lease.free) {
        this._leases.splice(this._leases.indexOf(lease), 1);
        this._pool.give(lease.buffer);
      }
    }
  }
}

/** `at` rounded up to the next multiple of READ_ALIGN. */
function alignUp(at: number): number {
  return (at + READ_ALIGN - 1) & ~(READ_ALIGN - 1);
}
