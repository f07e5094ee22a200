// What a server's main process and its workers exchange: the listening socket a worker inherits, and the messages over the IPC channel.

/** The descriptor on which a worker finds the listening socket, passed in its stdio when it is forked. */
export const WORKER_SOCKET_FD = 4;

/**
 * ping: the heartbeat, answered at once with pong; stop: stop accepting, finish the jobs
 * in progress, exit; retire (a reload): stop accepting, serve the connections already
 * accepted, exit.
 */
export type ToWorker = { kind: 'ping' } | { kind: 'stop' } | { kind: 'retire' };

/**
 * ready: listening on the inherited socket, and sent with a copy of it (which the main
 * process keeps when it holds none); cannot-listen: the socket was refused (code: an
 * errno name).
 */
export type ToMain = { kind: 'ready' } | { kind: 'pong' } | { kind: 'cannot-listen'; code: string; message: string };
