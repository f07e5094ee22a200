// The protocol's timeouts: their defaults, the environment variables that override them, the linger after a last frame.

/** After its last frame the server waits this long for the client to close. */
export const LINGER_MS = 2_000;

/** The server's timeouts; each can be set from the environment (see readTimeouts). */
export interface Timeouts {
  /** A connection must complete its HELLO within this time of being accepted. */
  handshakeMs: number;
  /** A connection with no traffic either way for this long is dropped (and a HELLO with no job after it). */
  idleMs: number;
  /** On SIGTERM or SIGINT, jobs in progress get this long to finish. */
  shutdownGraceMs: number;
  /** A worker that has not answered the main process's heartbeat for this long is killed and replaced. */
  watchdogMs: number;
  /** A worker that has not reported ready (listening) this long after it was forked is killed and replaced. */
  startMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = { handshakeMs: 5_000, idleMs: 30_000, shutdownGraceMs: 10_000, watchdogMs: 5_000, startMs: 10_000 };

/** The environment variable that overrides each timeout. */
export const TIMEOUT_VARIABLES: Readonly<Record<keyof Timeouts, string>> = {
  handshakeMs: 'OTP_HANDSHAKE_TIMEOUT_MS',
  idleMs: 'OTP_IDLE_TIMEOUT_MS',
  shutdownGraceMs: 'OTP_SHUTDOWN_GRACE_MS',
  watchdogMs: 'OTP_WATCHDOG_MS',
  startMs: 'OTP_START_TIMEOUT_MS',
};

/** The longest delay a Node timer takes (2^31 - 1 ms); one more would fire at once. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** A client waiting for its server gives up when nothing comes back for this long. */
export const REPLY_TIMEOUT_VARIABLE = 'OTP_REPLY_TIMEOUT_MS';
export const DEFAULT_REPLY_TIMEOUT_MS = 30_000;
