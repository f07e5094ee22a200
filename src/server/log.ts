// The server's log: one printable line per event, peers named by address, peer-supplied text escaped, bursts summed up.
import { hostPort } from '../format/host-port.js';

/** A peer as `127.0.0.1:5000` or `[::1]:5000`; null when the connection has already gone. */
export function formatPeer(address: string | undefined, port: number | undefined): string | null {
  return address === undefined || port === undefined ? null : hostPort(address, port);
}

/** Backslashes, controls, line and paragraph separators and other invisible characters. */
const UNSAFE = /[\\\p{C}\p{Zl}\p{Zp}]/gu;
const NAMED: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Text from a peer as one printable line: what could end the line, move the cursor or
 * talk to the terminal is written as an escape (`\n`, `\x1b`, `\u{202e}`), and a
 * backslash as `\\`, so that the escapes cannot be forged either.
 */
export function escapeText(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.codePointAt(0)!;
    return NAMED[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`);
  });
}

export type Log = (line: string) => void;

/** Writes `PROGRAM: line` to stderr; a line under PIPE_BUF bytes reaches a pipe whole, whichever process writes it. */
export function stderrLog(program: string): Log {
  // Node opens its stderr stream (a descriptor for a pipe) on first use: opened here, at
  // start, a process's descriptor count does not step up at its first log line.
  const stderr = process.stderr;
  return (line) => void stderr.write(`${program}: ${line}\n`);
}

/**
 * Counts events that come in bursts (connections refused for want of descriptors,
 * connections shed) and logs one line per burst: when none has come for `quietMs`, or
 * every `everyMs` while the burst lasts.
 */
export class BurstLog {
  private count = 0;
  private startedAt = 0;
  private lastAt = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: Log,
    private readonly describe: (count: number, ms: number) => string,
    private readonly quietMs = 1_000,
    private readonly everyMs = 10_000,
  ) {}

  /** One more event; true when it opens a burst. */
  add(now = Date.now()): boolean {
    const opens = this.count === 0;
    if (opens) this.startedAt = now;
    this.count++;
    this.lastAt = now;
    this.timer ??= setInterval(() => this.check(), this.quietMs).unref();
    return opens;
  }

  private check(now = Date.now()): void {
    const quiet = now - this.lastAt >= this.quietMs;
    if (!quiet && now - this.startedAt < this.everyMs) return;
    if (this.count > 0) this.log(this.describe(this.count, now - this.startedAt));
    this.count = 0;
    this.startedAt = now;
    if (quiet && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Logs what is counted so far, for a process on its way out. */
  flush(): void {
    if (this.count > 0) this.log(this.describe(this.count, Date.now() - this.startedAt));
    this.count = 0;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
