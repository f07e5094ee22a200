// The server's per-worker caps and the eviction rule's tuning (src/server/limits.ts applies them).

/**
 * Per-worker caps (defaults of --jobs and --connections). Memory is bounded by them: a job
 * holds at most its source's read buffers (BUFFERS_PER_SOURCE of JOB_READ_BUFFER bytes,
 * src/streams/socket-source.ts), its cipher's ring of CIPHER_WINDOW bytes, and what its
 * socket holds unsent beyond those (SINK_LIMIT, src/streams/socket-sink.ts); a connection
 * not yet in a job holds at most one socket read and a HELLO (docs/PROTOCOL.md).
 */
export const DEFAULT_JOBS_PER_WORKER = 16;
export const DEFAULT_CONNECTIONS_PER_WORKER = 256;
/** The most --jobs and --connections take. */
export const MAX_JOBS_PER_WORKER = 1024;
export const MAX_CONNECTIONS_PER_WORKER = 16_384;
/** A job reads its socket into lent buffers of this size, from a pool the worker's jobs share. */
export const JOB_READ_BUFFER = 1 << 20;
/** Descriptors a worker keeps out of its connection cap (IPC, stdio, the listener, answers in flight). */
export const FD_RESERVE = 32;

/**
 * The eviction rule (docs/PROTOCOL.md, applied by src/server/limits.ts): a full worker
 * makes room by shedding, in this order, connections already answered, connections with
 * no job yet (in their preamble or handshake), jobs with no traffic for IDLE_SHED_MS, then
 * the slowest job below REAL_CLIENT_RATE. A job's rate is its bytes either way over its
 * life, or once it is older than two windows over the last one to two RATE_WINDOW_MS, read
 * when a newcomer needs its slot; a span shorter than SHED_GRACE_MS counts as that long.
 */
export const RATE_WINDOW_MS = 5_000;
/**
 * Bytes a second, either way, that a real client reaches wherever it is: a job slower
 * than this is shed under contention, whatever it pays. On loopback an otp client moves
 * 100 MiB/s and more (1600 times this), 120 MiB/s over TLS. Across a network it moves
 * what its uplink carries: text and key go up, two bytes a symbol, and the result comes
 * down, one, so 64 KiB/s either way is some 43 KiB/s, 350 kbit/s, of upload: less than
 * the slowest ADSL line or 3G phone sends. What runs slower is waiting on a slow producer
 * (served while there is room) or is a drip: at 1 KiB/s, the rate before, 160 drips of 200
 * symbols every 250 ms (1.2-1.6 KiB/s each, 1 Mbit/s in all) held every job slot of a
 * default server; holding those 80 slots now takes 5 MiB/s, 40 Mbit/s, however it is paid.
 */
export const REAL_CLIENT_RATE = 64 << 10;
export const IDLE_SHED_MS = 1_000;
/**
 * The shortest span a job's rate is taken over: a job younger than this is weighed as if
 * it were this old, so it is kept only once it has moved REAL_CLIENT_RATE × SHED_GRACE_MS
 * bytes (16 KiB), a real client's first read or two. Its grace is paid for, not given: a
 * grace of time let drips that reconnect the moment they were told BUSY keep real clients
 * out by always being young (4-6 of 10 served against 160 such drips, now 10 of 10).
 */
export const SHED_GRACE_MS = 250;
