// The wire protocol's constants and limits, in one place; docs/PROTOCOL.md says the same in prose.

export const PROTOCOL_VERSION = 1;

/** Every frame: type (1 byte), payload length (4 bytes, big-endian), payload. */
export const HEADER_SIZE = 5;

export const FrameType = {
  HELLO: 1, // client → server, first frame: version byte, role byte
  TEXT: 2, // client → server: text symbols
  KEY: 3, // client → server: key symbols
  END: 4, // client → server: no more text or key; empty
  RESULT: 5, // server → client: transformed symbols
  DONE: 6, // server → client: every symbol has been sent; empty
  ERROR: 7, // either way: code byte, then a UTF-8 message; the last frame sent
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** TEXT, KEY and RESULT carry byte streams: their frame boundaries mean nothing. */
export const STREAM_TYPES: ReadonlySet<number> = new Set([FrameType.TEXT, FrameType.KEY, FrameType.RESULT]);

export const Role = { ENCRYPT: 0x45 /* 'E' */, DECRYPT: 0x44 /* 'D' */ } as const;
export type Role = (typeof Role)[keyof typeof Role];

export const ErrorCode = {
  PROTOCOL: 1, // malformed frames or frames out of order
  VERSION: 2, // the server does not speak the client's protocol version
  ROLE: 3, // the client's role does not match the server's
  BAD_TEXT: 4, // a byte of the text is not an alphabet symbol
  BAD_KEY: 5, // a byte of the key is not an alphabet symbol
  KEY_SHORT: 6, // END came with text left that no key byte matched
  KEY_LAG: 7, // one stream ran ahead of the other by more than CIPHER_WINDOW
  TIMEOUT: 8, // the peer went quiet for longer than the timeout
  SHUTDOWN: 9, // the server is stopping and will not take this job
  BUSY: 10, // the server is full, or shed this connection to make room for one making more progress
  TLS_REQUIRED: 11, // a plain connection to a server that serves TLS only; sent in plain
  CERT_REFUSED: 12, // the client's certificate is missing or not signed by the server's client CA
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Largest payload of a TEXT, KEY or RESULT frame. */
export const MAX_PAYLOAD = 1 << 20;
/** Largest payload of a HELLO, END, DONE or ERROR frame. */
export const MAX_CONTROL_PAYLOAD = 1024;
/**
 * Payload size the client sends in one data frame: the largest allowed. Measured on a
 * 64 MiB job: client CPU 0.34-0.36 s with 256 KiB frames, 0.28-0.30 s with 1 MiB.
 */
export const CHUNK_SIZE = MAX_PAYLOAD;
/** Most bytes of text (or of key) the cipher holds waiting for their partners: one whole chunk. */
export const CIPHER_WINDOW = 1 << 20;

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
}

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = { handshakeMs: 5_000, idleMs: 30_000, shutdownGraceMs: 10_000, watchdogMs: 5_000 };

/** The environment variable that overrides each timeout. */
export const TIMEOUT_VARIABLES: Readonly<Record<keyof Timeouts, string>> = {
  handshakeMs: 'OTP_HANDSHAKE_TIMEOUT_MS',
  idleMs: 'OTP_IDLE_TIMEOUT_MS',
  shutdownGraceMs: 'OTP_SHUTDOWN_GRACE_MS',
  watchdogMs: 'OTP_WATCHDOG_MS',
};

/** The longest delay a Node timer takes (2^31 - 1 ms); one more would fire at once. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/**
 * The timeouts, with the environment's overrides: plain decimal whole numbers of
 * milliseconds from 1 to MAX_TIMEOUT_MS. Anything else throws, naming the variable: a
 * typo must not quietly become a default, a 1 ms timer or a timer that never fires.
 */
export function readTimeouts(env: NodeJS.ProcessEnv = process.env): Timeouts {
  const timeouts = { ...DEFAULT_TIMEOUTS };
  for (const [field, name] of Object.entries(TIMEOUT_VARIABLES) as [keyof Timeouts, string][]) {
    timeouts[field] = envMs(env, name, timeouts[field]);
  }
  return timeouts;
}

/** A client waiting for its server gives up when nothing comes back for this long. */
export const REPLY_TIMEOUT_VARIABLE = 'OTP_REPLY_TIMEOUT_MS';
export const DEFAULT_REPLY_TIMEOUT_MS = 30_000;

/** The client's reply timeout, read as strictly as the server's timeouts. */
export function readReplyTimeout(env: NodeJS.ProcessEnv = process.env): number {
  return envMs(env, REPLY_TIMEOUT_VARIABLE, DEFAULT_REPLY_TIMEOUT_MS);
}

function envMs(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined) return fallback;
  const value = /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : NaN;
  if (!(value <= MAX_TIMEOUT_MS)) {
    throw new Error(`${name}=${JSON.stringify(text)} is not a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`);
  }
  return value;
}

/**
 * Per-worker caps (defaults of --jobs and --connections). Memory: a job holds at most
 * CIPHER_WINDOW bytes waiting in its cipher plus the buffers of its stages and socket,
 * JOB_MEMORY_BOUND in all; a connection not yet in a job holds at most one socket read.
 * So a worker holds at most jobs × JOB_MEMORY_BOUND + connections × CONNECTION_MEMORY_BOUND
 * of client data (16 × 6 MiB + 256 × 64 KiB = 112 MiB), and a server `--workers` times that.
 */
export const DEFAULT_JOBS_PER_WORKER = 16;
export const DEFAULT_CONNECTIONS_PER_WORKER = 256;
/** The most --jobs and --connections take. */
export const MAX_JOBS_PER_WORKER = 1024;
export const MAX_CONNECTIONS_PER_WORKER = 16_384;
/**
 * Worst-case bytes one job costs a worker: CIPHER_WINDOW, its stage and socket buffers,
 * and the heap growth they bring. Measured: 16 jobs streaming 1 MiB frames to one worker
 * and reading nothing took it from 44 to 133 MiB RSS, 5.5 MiB a job.
 */
export const JOB_MEMORY_BOUND = 6 << 20;
/** A job reads its socket into one buffer of this size, reused for every read (plain TCP). */
export const JOB_READ_BUFFER = 1 << 20;
/** Worst-case bytes a connection holds before its job starts: one socket read. */
export const CONNECTION_MEMORY_BOUND = 64 << 10;
/** Descriptors a worker keeps out of its connection cap (IPC, stdio, the listener, answers in flight). */
export const FD_RESERVE = 32;

/**
 * The eviction rule (docs/PROTOCOL.md): a full worker makes room by shedding, in this
 * order, connections already answered, connections still in their handshake, jobs with
 * no traffic for IDLE_SHED_MS, then the job whose rate over the last RATE_WINDOW_MS is
 * lowest, if it is below MIN_RATE. No job younger than SHED_GRACE_MS is shed.
 */
export const MIN_RATE = 1024;
export const RATE_WINDOW_MS = 5_000;
export const IDLE_SHED_MS = 1_000;
export const SHED_GRACE_MS = 250;

export interface Frame {
  type: number;
  payload: Buffer;
  /** Gives the payload's memory back to its pool once it has been written out. */
  release?: () => void;
  /**
   * The whole frame, header then payload, in one buffer, when the payload was read in
   * behind room for its header: it goes out as one write (over TLS, one buffer is
   * encrypted where it is; two would first be copied together).
   */
  wire?: Buffer;
}

/** An ERROR frame; a message too long for a control frame is cut at a character boundary. */
export function errorFrame(code: ErrorCode, message: string): Frame {
  const text = Buffer.from(message);
  let length = Math.min(text.length, MAX_CONTROL_PAYLOAD - 1);
  // Back off the continuation bytes (10xxxxxx) of a character the limit would split.
  if (length < text.length) while (length > 0 && (text[length] & 0xc0) === 0x80) length--;
  const payload = Buffer.allocUnsafe(1 + length);
  payload[0] = code;
  text.copy(payload, 1, 0, length);
  return { type: FrameType.ERROR, payload };
}

export function parseError(payload: Buffer): { code: number; message: string } {
  return { code: payload.length > 0 ? payload[0] : 0, message: payload.subarray(1).toString() };
}

export function helloFrame(role: Role): Frame {
  return { type: FrameType.HELLO, payload: Buffer.from([PROTOCOL_VERSION, role]) };
}

/** Longest PROXY protocol version 1 line, its CRLF included (the spec's own bound). */
export const PROXY_V1_MAX_LENGTH = 107;
/**
 * Most bytes of addresses and extensions a PROXY protocol version 2 header may announce
 * (the field allows 65535): room for two UNIX addresses (216) and the usual extensions.
 */
export const PROXY_V2_MAX_LENGTH = 1024;
