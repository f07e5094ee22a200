// An exclusive lock next to a file, safe under concurrency and kill -9: a symlink naming its holder.
import { lstatSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { UserError } from '../cli/errors.js';
import { fileKind } from '../format/file-kind.js';
import { cryptoModule } from '../tls/lazy-modules.js';

/** How long to wait for a lock held by a live process before giving up. */
export const LOCK_WAIT_MS = 10_000;

/**
 * The lock is a symlink whose target names the holder, `HOST:PID:NONCE`: creating a
 * symlink is atomic and fails if the name exists, and its target is there from the first
 * instant, so no one ever sees a lock without its holder. A holder killed (kill -9) leaves
 * its lock behind; the next process finds the holder's pid dead and breaks the lock. Two
 * processes may find the same dead lock at once, so breaking takes a second lock, `.break`,
 * and, holding it, removes the dead lock only if it still names the dead holder: no one
 * ever removes a live lock. Only a process killed in the microseconds it holds `.break`
 * leaves a lock that needs a person, and the error then says which file to remove.
 * Anything else at the lock's name (a file, a FIFO, a link to elsewhere) was made by no
 * FileLock and waiting will not remove it: it is refused at once, named.
 */
export class FileLock {
  private readonly _token = `${hostname()}:${process.pid}:${cryptoModule().randomBytes(6).toString('hex')}`;
  private readonly _breaker: string;

  constructor(
    readonly path: string,
    private readonly _what: string,
  ) {
    this._breaker = `${path}.break`;
  }

  /** Takes the lock, waiting up to `waitMs` for a live holder; throws a UserError after that. */
  acquire(waitMs = LOCK_WAIT_MS): void {
    const deadline = Date.now() + waitMs;
    for (let attempt = 0; ; attempt++) {
      if (tryCreate(this.path, this._token)) return;
      const holder = this._holder(this.path);
      if (holder !== null && isDead(holder) && this._breakDead(holder)) continue;
      if (Date.now() > deadline) {
        const stuck = holder !== null && isDead(holder) ? this._breaker : this.path;
        throw new UserError(`${this._what} is locked${holder ? ` by ${describe(holder)}` : ''}; if no enc_client is running, remove '${stuck}'`);
      }
      sleep(Math.min(50, 1 + attempt) * (0.5 + Math.random()));
    }
  }

  /** True while this process holds the lock. */
  held(): boolean {
    return readLink(this.path) === this._token;
  }

  release(): void {
    if (this.held()) unlinkSync(this.path);
  }

  /** Removes the lock if it still names `dead`; false when another breaker is at it. */
  private _breakDead(dead: string): boolean {
    if (!tryCreate(this._breaker, this._token)) {
      const breaker = this._holder(this._breaker);
      // A breaker that died at work leaves `.break`: wait, and in the end say so.
      return breaker === null;
    }
    try {
      if (readLink(this.path) === dead) unlinkSync(this.path);
    } finally {
      unlinkSync(this._breaker);
    }
    return true;
  }

  /** The holder a lock at `path` names, or null when there is none; a UserError when something else is there. */
  private _holder(path: string): string | null {
    const target = readLink(path);
    if (target === null) {
      const found = lstatSync(path, { throwIfNoEntry: false });
      // Nothing, or a lock made since readlink looked: the caller tries again.
      if (!found || found.isSymbolicLink()) return null;
      throw this._notALock(path, fileKind(found));
    }
    if (!HOLDER.test(target)) throw this._notALock(path, `a symbolic link to '${target}'`);
    return target;
  }

  private _notALock(path: string, kind: string): UserError {
    return new UserError(`cannot lock ${this._what}: '${path}' is ${kind}, not a lock; move it away`);
  }
}

/** A lock's target: `HOST:PID:NONCE`. */
const HOLDER = /^[^:]+:\d+:/;

function tryCreate(path: string, token: string): boolean {
  try {
    symlinkSync(token, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** The symbolic link's target, or null when there is none at `path` (or something that is not a link). */
function readLink(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EINVAL') return null;
    throw err;
  }
}

/** A holder on this host whose process is gone; one on another host cannot be judged. */
function isDead(holder: string): boolean {
  const [host, pidText] = holder.split(':');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function describe(holder: string): string {
  const [host, pid] = holder.split(':');
  return host === hostname() ? `process ${pid}` : `process ${pid} on ${host}`;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread: the client has nothing else to do while it waits for the ledger. */
function sleep(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
