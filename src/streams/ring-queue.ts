// A first-in first-out queue of bytes copied into one fixed ring: for pieces that are views of a buffer about to be reused.

/**
 * What ByteQueue does, for a caller whose pieces do not stay valid (a socket read into
 * one reused buffer): every piece is copied in, so the queue holds no reference to it,
 * and the memory is one buffer the caller gives (from a pool: a job's is used again by the next). It holds at most `capacity` bytes; the
 * caller checks the room first (`room`), as the cipher checks its window.
 */
export class RingQueue {
  /** Bytes held. */
  bytes = 0;

  readonly capacity: number;
  /** Where the oldest byte is. */
  private _head = 0;

  /** `_ring`: the memory, the caller's (a pool's); its length is the capacity. */
  constructor(private readonly _ring: Buffer) {
    this.capacity = _ring.length;
  }

  /** Entries a caller would count: the held bytes are at most two stretches of the ring. */
  get pieces(): number {
    if (this.bytes === 0) return 0;
    return this._head + this.bytes > this.capacity ? 2 : 1;
  }

  get room(): number {
    return this.capacity - this.bytes;
  }

  push(piece: Buffer): void {
    if (piece.length > this.room) throw new RangeError(`a piece of ${piece.length} bytes does not fit in ${this.room}`);
    let tail = (this._head + this.bytes) % this.capacity;
    for (let at = 0; at < piece.length; ) {
      const n = piece.copy(this._ring, tail, at);
      at += n;
      tail = (tail + n) % this.capacity;
    }
    this.bytes += piece.length;
  }

  /** The oldest bytes held, as one contiguous view; empty when nothing is held. */
  front(): Buffer {
    return this._ring.subarray(this._head, Math.min(this.capacity, this._head + this.bytes));
  }

  /** Drops the first n bytes of front(). */
  take(n: number): void {
    this.bytes -= n;
    this._head = this.bytes === 0 ? 0 : (this._head + n) % this.capacity;
  }

  clear(): void {
    this.bytes = 0;
    this._head = 0;
  }
}
