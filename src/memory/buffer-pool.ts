// A free list of equal-sized buffers: a steady stream reuses its memory instead of making garbage.

export class BufferPool {
  private readonly _free: Buffer[] = [];

  /** `keep`: most buffers held free; more than that in use at once are simply not kept. */
  constructor(
    readonly size: number,
    private readonly _keep = 8,
  ) {}

  take(): Buffer {
    return this._free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  give(buf: Buffer): void {
    if (this._free.length < this._keep) this._free.push(buf);
  }
}
