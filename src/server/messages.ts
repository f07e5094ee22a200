// The messages a server's main process and its workers exchange over the IPC channel.

export interface JobReport {
  pid: number;
  /** Bytes read from the client, HELLO included. */
  received: number;
  /** Symbols sent back. */
  symbols: number;
  ms: number;
  /** ok: every symbol sent; fault: ended with an ERROR frame; broken: the connection failed. */
  outcome: 'ok' | 'fault' | 'broken';
  detail?: string;
}

/**
 * Sent with a socket handle: the bytes the main process read past the HELLO, base64, and
 * how many it read in all (the HELLO, whatever its length, and those).
 */
export type ToWorker = { kind: 'job'; rest: string; read: number };

export type ToMain = { kind: 'ready' } | { kind: 'done'; report: JobReport };
