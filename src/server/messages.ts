// The messages a server's main process and its workers exchange over the IPC channel.

/**
 * listen: comes with the listening socket's handle, to accept on; ping: the heartbeat,
 * answered at once with pong; stop: stop accepting, finish the jobs in progress, exit;
 * retire (a reload): stop accepting, serve the connections already accepted, exit.
 */
export type ToWorker = { kind: 'listen' } | { kind: 'ping' } | { kind: 'stop' } | { kind: 'retire' };

/** ready: may be sent the handle; cannot-listen: the handle was refused (code: an errno name). */
export type ToMain = { kind: 'ready' } | { kind: 'pong' } | { kind: 'cannot-listen'; code: string; message: string };
