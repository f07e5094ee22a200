// How a process shows in ps, pgrep and killall: its name as invoked, and what it is doing.
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';

/**
 * The name the program was invoked as: a symlink `otp_enc_d` to `enc_server` runs as
 * otp_enc_d. process.argv[1] is the script's path as given, symlinks unresolved; a
 * source file run through tsx ends in .ts, which is not part of the name.
 */
export function invokedName(program: string, script: string | undefined = process.argv[1]): string {
  const name = script ? basename(script).replace(/\.[cm]?[jt]s$/, '') : '';
  return name || program;
}

/**
 * Names this process `name`, with `detail` after it on the command line:
 * `enc_server 5000 main` in `ps` and `pgrep -a`, while `pgrep -x enc_server` and
 * `killall enc_server` still match.
 *
 * On Linux these are two things. The command line (/proc/PID/cmdline) is what Node's
 * process.title rewrites, in place, so it is cut to the length of the original
 * arguments. The process name (/proc/PID/comm, at most 15 bytes) is what pgrep -x and
 * killall match; libuv sets it to the title's first 15 bytes, so it is written back
 * to the bare name afterwards. Elsewhere (no /proc) the title alone is set.
 */
export function nameProcess(name: string, detail?: string): void {
  process.title = detail ? `${name} ${detail}` : name;
  if (!detail) return;
  try {
    writeFileSync('/proc/self/comm', name);
  } catch {
    // Not Linux, or /proc is not mounted: the title is all there is.
  }
}

/** A server's main process or worker, `program` as invoked: `enc_server 5000 main`, `enc_server 5000 worker` (`socket` for a socket systemd passed). */
export function nameServerProcess(program: string, port: number | 'socket', role: 'main' | 'worker'): void {
  nameProcess(program, `${port} ${role}`);
}
