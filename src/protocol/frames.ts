// The wire format: frame layout, types, roles, error codes, payload limits; docs/PROTOCOL.md says the same in prose.

export const PROTOCOL_VERSION = 1;

/** Every frame: type (1 byte), payload length (4 bytes, big-endian), payload. */
export const HEADER_SIZE = 5;

/**
 * The payload length in the header that begins at bytes[at], whose HEADER_SIZE bytes the
 * caller has checked are there: read byte by byte, since bytes.readUInt32BE checks its
 * bounds on every call, and the parsers' loops read one header a frame.
 */
export function payloadLength(bytes: Uint8Array, at: number): number {
  return ((bytes[at + 1] << 24) | (bytes[at + 2] << 16) | (bytes[at + 3] << 8) | bytes[at + 4]) >>> 0;
}

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

export interface Frame {
  type: number;
  payload: Buffer;
  /**
   * The HEADER_SIZE bytes before the payload, in its memory, are free: the frame's header
   * may be written there, so that header and payload leave as one buffer (over TLS, one
   * buffer is encrypted where it is; two would first be copied together).
   */
  headroom?: boolean;
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
