// A free list of equal-sized buffers: a steady stream reuses its memory instead of making garbage.

export class BufferPool {
  private readonly _free: Buffer[] = [];

  /** `keep`: most buffers held free; more than that in use at once are simply not kept. */
  constructor(
    readonly size: number,
    private readonly _keep = 8,
  ) {}

  /** A buffer of its own memory (never a slice of Node's shared pool): it may be lent (src/memory/lease.ts). */
  take(): Buffer {
    return this._free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(buf: Buffer): void {
    if (this._free.length < this._keep) this._free.push(buf);
  }
}
