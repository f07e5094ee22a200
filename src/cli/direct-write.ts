// Writes a few lines straight to a descriptor, without the stream Node would make for it: --help, --version, an error's one line.
import { writeSync } from 'node:fs';

/** A 1 ms sleep for a descriptor that cannot take more yet. */
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `text` to descriptor `fd` before returning. process.stdout and
 * process.stderr are streams Node makes on first use, and for a pipe or a terminal that
 * loads node:net and node:stream: a third of what `--version` cost beyond Node's start
 * (docs/PERFORMANCE.md). A descriptor that another process left non-blocking (a full
 * pipe then answers EAGAIN) is waited for; any other failure is thrown.
 */
export function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text);
  let at = 0;
  while (at < bytes.length) {
    try {
      at += writeSync(fd, bytes, at, bytes.length - at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}
