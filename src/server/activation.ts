// systemd socket activation: whether this process was handed its listening socket (sd_listen_fds(3)), and on which descriptor.
import { UserError } from '../cli/errors.js';

/** The first descriptor systemd passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/**
 * The descriptor of the socket systemd passed to this very process, or null when it
 * passed none. The variables are then removed, as sd_listen_fds(1) does, so that the
 * workers this process forks do not take them for their own.
 */
export function activatedSocket(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | null {
  if (env.LISTEN_PID === undefined || env.LISTEN_PID !== String(pid)) return null;
  const count = env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (count !== '1') throw new UserError(`systemd passed ${count ?? 'no'} sockets (LISTEN_FDS); give this server exactly one`);
  return LISTEN_FDS_START;
}
