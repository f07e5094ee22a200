// The server's per-worker caps and the eviction rule's tuning (src/server/limits.ts applies them).

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
