// A pooled buffer lent to a pipeline: its views travel from stage to stage, and it is read into again only once every one of them has been given back.
//
// Why a lease. The stages are zero-copy: a socket is read into a buffer of ours, the frame
// decoder passes payloads on as views of it, the cipher writes each result over the bytes it
// was made from, and the encoder writes each result's header into the bytes just before it.
// The same memory is then in flight from the read to the kernel's taking of the last byte
// made from it, through the buffers of every stage between (a stage holds what its next
// stage cannot take yet). Reading into it again before then would send later bytes in place
// of earlier ones (1741cc5 fixed such a bug, where the rule lived in four places).
//
// So the rule lives here. Every view of lent memory in flight carries one hold:
//   - whoever makes a view and hands it on takes a hold for it (`hold`);
//   - a stage that passes a view on, and reads its memory no more, passes its hold with it;
//     one that still reads it after the push (the cipher, which may read the rest of its
//     input after pushing the result written over its start) takes a hold for the view it
//     pushes and gives its own back when it is done;
//   - a stage that drops a view, or copies its bytes out, gives its hold back (`release`);
//   - the last stage gives it back from the callback of the write that took the bytes.
// Views find their lease by their memory (`Lease.of`), so no stage needs a field for it.
// A view that loses its hold (a copy, a stage that forgets) can only keep its lease lent
// for good: the source then stops reading and the connection's idle timeout ends the job.
// Giving back more than was taken throws: that is the bug that would corrupt data.
//
// A lent buffer's bytes are the pipeline's to write over, and so are the HEADER_SIZE bytes
// before any view of it (a header already read, or the gap its lender leaves before each
// read): that is where a frame's header is written, so that header and payload leave as one
// buffer. A lease's buffer owns its whole ArrayBuffer, so that its memory names it.

const leases = new WeakMap<ArrayBufferLike, Lease>();

export class Lease {
  /** Views of the buffer in flight. */
  private _holds = 0;

  /**
   * `buffer` must own its ArrayBuffer whole (Buffer.allocUnsafe of 4 KiB or more does);
   * `free` is called each time the last hold is given back.
   */
  constructor(
    readonly buffer: Buffer,
    private readonly _free: (lease: Lease) => void,
  ) {
    if (buffer.byteOffset !== 0 || buffer.buffer.byteLength !== buffer.length) {
      throw new RangeError('a lent buffer must own its memory whole');
    }
    leases.set(buffer.buffer, this);
  }

  /** The lease of the memory `view` lies in; undefined for memory nobody lent. */
  static of(view: Uint8Array): Lease | undefined {
    return leases.get(view.buffer);
  }

  get holds(): number {
    return this._holds;
  }

  get free(): boolean {
    return this._holds === 0;
  }

  hold(): void {
    this._holds++;
  }

  release(): void {
    if (this._holds === 0) throw new Error('a lease was given back more often than it was taken');
    if (--this._holds === 0) this._free(this);
  }

  /** Takes a hold if `view` is lent memory; what `releaseView` later gives back. */
  static holdView(view: Uint8Array): void {
    leases.get(view.buffer)?.hold();
  }

  /** Gives back the hold of `view` if it is lent memory; nothing otherwise. */
  static releaseView(view: Uint8Array): void {
    leases.get(view.buffer)?.release();
  }
}
