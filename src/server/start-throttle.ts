// How often the main process may start a worker: at most a number of starts in any second, so that workers that cannot start are not restarted in a tight loop.

export const THROTTLE_WINDOW_MS = 1000;

export class StartThrottle {
  /** When the starts within the last window were made, oldest first. */
  private starts: number[] = [];

  /** `limit` starts in any THROTTLE_WINDOW_MS. */
  constructor(private readonly limit: number) {}

  /** 0 when a start may be made at `now` (and then counts it), else how many ms until one may. */
  take(now: number): number {
    this.starts = this.starts.filter((t) => now - t < THROTTLE_WINDOW_MS);
    if (this.starts.length >= this.limit) return this.starts[0] + THROTTLE_WINDOW_MS - now;
    this.starts.push(now);
    return 0;
  }
}
