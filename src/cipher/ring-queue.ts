// A first-in first-out queue of bytes copied into a ring, which grows on demand up to its capacity: for pieces whose memory is about to be reused.

/** Where a ring's memory comes from and goes back to (a pool, for the full capacity). */
export interface RingMemory {
  take(size: number): Buffer;
  give(buffer: Buffer): void;
}

/** The smallest ring: a few pages, what a small job's waiting bytes need. */
export const MIN_RING = 16 * 1024;

const fresh: RingMemory = { take: (size) => Buffer.allocUnsafe(size), give: () => {} };

/**
 * For a caller whose pieces do not stay valid (views of a socket's read buffer): every
 * piece is copied in, so the queue holds no reference to it. The ring has no memory until
 * the first push, then MIN_RING bytes, and the whole `capacity` as soon as the bytes held
 * need more: two sizes, each of which a pool can keep, so that a job whose streams keep
 * in step never takes the whole window's memory, and one that does not takes it at once
 * rather than in fresh steps (a first touch of a page costs 14 µs on a VM like this one's).
 * Growing copies the bytes held once. It holds at most `capacity` bytes; the caller checks
 * the room first (`room`), as the cipher checks its window.
 */
export class RingQueue {
  /** Bytes held. */
  bytes = 0;

  /** The memory, once there is any; its length is the current size of the ring. */
  private _ring: Buffer | null = null;
  /** Where the oldest byte is. */
  private _head = 0;

  constructor(
    readonly capacity: number,
    private readonly _memory: RingMemory = fresh,
  ) {}

  /** Entries a caller would count: the held bytes are at most two stretches of the ring. */
  get pieces(): number {
    if (this.bytes === 0) return 0;
    return this._head + this.bytes > this._ring!.length ? 2 : 1;
  }

  get room(): number {
    return this.capacity - this.bytes;
  }

  push(piece: Buffer): void {
    if (piece.length > this.room) throw new RangeError(`a piece of ${piece.length} bytes does not fit in ${this.room}`);
    if (piece.length === 0) return;
    if (!this._ring || this._ring.length < this.bytes + piece.length) this._grow(this.bytes + piece.length);
    const ring = this._ring!;
    let tail = (this._head + this.bytes) % ring.length;
    for (let at = 0; at < piece.length; ) {
      const n = piece.copy(ring, tail, at);
      at += n;
      tail = (tail + n) % ring.length;
    }
    this.bytes += piece.length;
  }

  /** The oldest bytes held, as one contiguous view; empty when nothing is held. */
  front(): Buffer {
    if (this.bytes === 0) return EMPTY;
    return this._ring!.subarray(this._head, Math.min(this._ring!.length, this._head + this.bytes));
  }

  /** Drops the first n bytes of front(). */
  take(n: number): void {
    this.bytes -= n;
    this._head = this.bytes === 0 ? 0 : (this._head + n) % this._ring!.length;
  }

  clear(): void {
    this.bytes = 0;
    this._head = 0;
  }

  /** Empties the queue and gives its memory back; it may grow again. */
  release(): void {
    this.clear();
    if (this._ring) this._memory.give(this._ring);
    this._ring = null;
  }

  /** A ring of MIN_RING bytes, or of the whole capacity when `need` is more, with the bytes held copied to its start. */
  private _grow(need: number): void {
    const size = need <= MIN_RING ? Math.min(MIN_RING, this.capacity) : this.capacity;
    const next = this._memory.take(size);
    const old = this._ring;
    if (old) {
      for (let copied = 0; copied < this.bytes; ) {
        const head = (this._head + copied) % old.length;
        copied += old.copy(next, copied, head, Math.min(old.length, head + this.bytes - copied));
      }
      this._memory.give(old);
    }
    this._ring = next;
    this._head = 0;
  }
}

const EMPTY = Buffer.alloc(0);
