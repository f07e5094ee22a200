// Odd files for tests: FIFOs, and whether a name is taken at all (a lock is a dangling symlink, which existsSync calls absent).
import { execFileSync } from 'node:child_process';
import { lstatSync } from 'node:fs';

/** True when something, even a dangling symlink, has the name `path`. */
export function present(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch (err) {
    // A name under something that is not a directory cannot be there.
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw err;
  }
}

/** Makes a FIFO at `path` (Node has no mkfifo). */
export function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}
