// A progress meter on stderr: percent, MiB/s and time left, redrawn in place a few times a second.

const MIB = 1 << 20;
/** Inputs above this get a meter by default when stderr is a terminal. */
export const PROGRESS_FROM = 16 * MIB;

/** `stderrIsTty` is asked last: Node makes process.stderr on first use, and for a pipe or a terminal that costs a small job's start-up. */
export function wantProgress(choice: boolean | undefined, size: number | null, stderrIsTty: () => boolean): boolean {
  if (choice !== undefined) return choice;
  return (size === null || size > PROGRESS_FROM) && stderrIsTty();
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/** One line of the meter; `total` is null when the input's size cannot be known (stdin). */
export function progressLine(program: string, done: number, total: number | null, seconds: number): string {
  const rate = seconds > 0 ? done / MIB / seconds : 0;
  const mib = (n: number): string => (n / MIB).toFixed(1);
  if (total === null) return `${program}: ${mib(done)} MiB, ${rate.toFixed(0)} MiB/s`;
  const percent = total > 0 ? Math.floor((100 * done) / total) : 100;
  const left = rate > 0 ? clock((total - done) / MIB / rate) : '?';
  return `${program}: ${percent}% ${mib(done)} of ${mib(total)} MiB, ${rate.toFixed(0)} MiB/s, ${left} left`;
}

/** Draws `progressLine` for `count()` every `everyMs` until stopped; stopping clears the line. */
export function startProgress(program: string, total: number | null, count: () => number, everyMs = 200): () => void {
  const started = Date.now();
  const draw = (): void => {
    process.stderr.write(`\r${progressLine(program, count(), total, (Date.now() - started) / 1000)}\x1b[K`);
  };
  const timer = setInterval(draw, everyMs).unref();
  draw();
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    process.stderr.write('\r\x1b[K');
  };
}
