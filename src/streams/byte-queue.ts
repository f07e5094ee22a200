// A first-in first-out queue of byte pieces whose cost per byte is bounded however the bytes are cut.

/** Pieces shorter than this are copied together into gather buffers of GATHER_SIZE bytes. */
export const GATHER_BELOW = 4096;
export const GATHER_SIZE = 16 * 1024;

/**
 * Large pieces are held as they are (no copy); small ones are copied into shared gather
 * buffers, so a million one-byte pieces are some sixty entries, not a million. Taking
 * from the front moves an index rather than the entries, and the consumed entries are
 * dropped in one splice once they are the larger part of the list: every operation
 * costs O(1) amortised, plus the copy of a small piece.
 */
export class ByteQueue {
  /** Bytes held. */
  bytes = 0;

  private _entries: Buffer[] = [];
  /** Index of the oldest entry still holding bytes. */
  private _head = 0;
  /** Bytes of _entries[_head] already taken. */
  private _headTaken = 0;
  /** The last entry, when it is a gather buffer with room left; its filled length. */
  private _gather: Buffer | null = null;
  private _gatherFill = 0;
  /** A gather buffer whose bytes were copied out, ready for reuse. */
  private _spare: Buffer | null = null;

  /** Entries held: bounded by bytes / GATHER_BELOW + bytes / GATHER_SIZE + 2. */
  get pieces(): number {
    return this._entries.length - this._head;
  }

  push(piece: Buffer): void {
    if (piece.length === 0) return;
    this.bytes += piece.length;
    if (piece.length >= GATHER_BELOW) {
      this._closeGather();
      this._entries.push(piece);
      return;
    }
    for (let at = 0; at < piece.length; ) {
      if (!this._gather || this._gatherFill === GATHER_SIZE) {
        this._closeGather();
        this._gather = this._spare ?? Buffer.allocUnsafe(GATHER_SIZE);
        this._spare = null;
        this._gatherFill = 0;
        this._entries.push(this._gather);
      }
      const n = piece.copy(this._gather, this._gatherFill, at);
      this._gatherFill += n;
      at += n;
    }
  }

  /** The oldest bytes held, as one contiguous view; empty when nothing is held. */
  front(): Buffer {
    if (this.bytes === 0) return EMPTY;
    const entry = this._entries[this._head];
    return entry.subarray(this._headTaken, this._end(entry));
  }

  /** Drops the first n bytes of front(). */
  take(n: number): void {
    this.bytes -= n;
    this._headTaken += n;
    const entry = this._entries[this._head];
    if (this._headTaken < this._end(entry)) return;
    if (entry === this._gather) this._gather = null;
    this._head++;
    this._headTaken = 0;
    if (this._head === this._entries.length) {
      this._entries.length = 0;
      this._head = 0;
    } else if (this._head > 32 && this._head * 2 > this._entries.length) {
      this._entries.splice(0, this._head);
      this._head = 0;
    }
  }

  clear(): void {
    this._entries = [];
    this._head = 0;
    this._headTaken = 0;
    this._gather = null;
    this._spare = null;
    this.bytes = 0;
  }

  /**
   * The open gather buffer, the last entry, takes no more: the entry becomes its filled
   * part. A nearly empty one is copied out and kept for the next small piece, so that
   * small pieces between large ones do not hold a gather buffer each.
   */
  private _closeGather(): void {
    const gather = this._gather;
    if (!gather) return;
    const filled = gather.subarray(0, this._gatherFill);
    if (this._gatherFill < GATHER_SIZE / 4) {
      this._entries[this._entries.length - 1] = Buffer.from(filled);
      this._spare = gather;
    } else {
      this._entries[this._entries.length - 1] = filled;
    }
    this._gather = null;
  }

  private _end(entry: Buffer): number {
    return entry === this._gather ? this._gatherFill : entry.length;
  }
}

const EMPTY = Buffer.alloc(0);
