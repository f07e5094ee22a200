// A socket's frames, read into one reused buffer (`onread`) and written to a Writable, in order.
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import type { Frame } from '../protocol/frames.js';
import { FrameParser, type FrameParserOptions } from './frame-parser.js';

/** Bytes read at most per system call. */
export const READ_BUFFER = 1 << 20;

/**
 * What `pipeline(socket, new FrameDecoder({ partial: true }), sink)` does, without a new
 * buffer for every read: Node reads into one buffer, the frames' payloads are views of
 * it, and reading stops (the socket pauses) for as long as the sink holds any of them,
 * until every frame written has been taken (its write callback). A sink that takes
 * each frame at once, as ResultSink does with a synchronous stdout, never pauses it.
 *
 * Pass `onread` to net.connect or new Socket, then `attach` the socket. A socket that
 * cannot read into a buffer of ours (a TLS socket) is read from its 'data' events instead:
 * they come a TLS record (16 KiB at most) at a time, so they are gathered into the same
 * buffer and parsed together once the loop turns (or the buffer is full), which makes a
 * few large writes to the sink out of many small ones; reading pauses the same way.
 */
export class FrameReader {
  readonly onread: { buffer: Buffer; callback: (bytes: number, buffer: Uint8Array) => boolean };
  private readonly _parser: FrameParser;
  /** Frames written to the sink whose callbacks have not come yet. */
  private _pending = 0;
  private _socket: Socket | null = null;
  private _paused = false;
  /** Bytes of 'data' gathered at the start of the buffer, not parsed yet. */
  private _gathered = 0;
  private _parseScheduled = false;
  /** The first bytes the socket gave (up to two), to tell what kind of peer answered. */
  opening: Buffer | null = null;

  constructor(
    private readonly _sink: Writable,
    options: FrameParserOptions = {},
    size = READ_BUFFER,
  ) {
    this._parser = new FrameParser((frame) => this._write(frame), options);
    this.onread = { buffer: Buffer.allocUnsafe(size), callback: (bytes) => this._take(bytes) };
  }

  /**
   * Ends the sink when the socket's input ends; `done` gets the first failure (a socket
   * error, a close before the end, the sink's error) or null once the sink has finished.
   */
  attach(socket: Socket, done: (err: Error | null) => void): void {
    this._socket = socket;
    let settled = false;
    const settle = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      done(err);
    };
    let ended = false;
    socket.once('end', () => {
      ended = true;
      this._parseGathered();
      this._parser.end();
      this._sink.end();
    });
    // What came before a failure is written out before the failure is judged.
    socket.once('error', (err) => {
      this._parseGathered();
      settle(err);
    });
    socket.once('close', () => {
      this._parseGathered();
      if (!ended) settle(new Error('the connection closed before the result was complete'));
    });
    this._sink.once('error', settle);
    this._sink.once('finish', () => settle(null));
    // Never emitted for a socket read through `onread`.
    socket.on('data', (chunk: Buffer) => this._gather(chunk));
  }

  /** Set once the frames were malformed or cut short (see FrameParser). */
  get faulted(): boolean {
    return this._parser.faulted;
  }

  /** The fault was the input ending inside a frame (a broken connection), not a bad frame. */
  get cutShort(): boolean {
    return this._parser.cutShort;
  }

  /** A 'data' chunk joins the gathered bytes; they are parsed when the loop turns, or now when it does not fit. */
  private _gather(chunk: Buffer): void {
    const buffer = this.onread.buffer;
    if (this._gathered + chunk.length > buffer.length) this._parseGathered();
    // Reading paused: the sink holds the buffer, and the chunk is parsed where it is.
    if (this._paused || chunk.length > buffer.length) {
      if (!this._parse(chunk)) this._socket!.pause();
      return;
    }
    chunk.copy(buffer, this._gathered);
    this._gathered += chunk.length;
    if (this._parseScheduled) return;
    this._parseScheduled = true;
    setImmediate(() => {
      this._parseScheduled = false;
      this._parseGathered();
    });
  }

  private _parseGathered(): void {
    if (this._gathered === 0) return;
    const bytes = this.onread.buffer.subarray(0, this._gathered);
    this._gathered = 0;
    if (!this._parse(bytes)) this._socket!.pause();
  }

  private _take(bytes: number): boolean {
    return this._parse(this.onread.buffer.subarray(0, bytes));
  }

  /** False when reading must stop until the sink has taken what it holds. */
  private _parse(bytes: Buffer): boolean {
    this.opening ??= Buffer.from(bytes.subarray(0, 2));
    this._parser.write(bytes);
    // Still held by the sink: the next read would overwrite it.
    if (this._sink.writableLength === 0) return true;
    this._paused = true;
    return false;
  }

  private _write(frame: Frame): void {
    if (this._sink.writableEnded) return;
    this._pending++;
    this._sink.write(frame, () => {
      if (--this._pending === 0 && this._paused) {
        this._paused = false;
        this._socket?.resume();
      }
    });
  }
}
