// A client's whole job: check the files, stream them to the server, write the result to stdout.
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream';
import { type Direction } from '../cipher/alphabet.js';
import { EXIT_OK, EXIT_SERVER, fail, UserError } from '../cli/errors.js';
import { endWhenIdle } from '../cli/exit.js';
import { stdout } from '../cli/stdout.js';
import { Role } from '../protocol/frames.js';
import { readReplyTimeout } from '../cli/environment.js';
import { BufferPool } from '../memory/buffer-pool.js';
import { FrameDecoder } from '../streams/frame-decoder.js';
import { FrameEncoder } from '../streams/frame-encoder.js';
import { SocketSink } from '../streams/socket-sink.js';
import { SocketSource } from '../streams/socket-source.js';
import { PadSource } from './pad-source.js';
import { ResultSink } from './result-sink.js';
import { openConnection } from './connect.js';
import { startProgress, wantProgress } from './progress.js';
import { checkKey, checkText, countSymbols, openInput, type InputFile } from './input-file.js';
import type * as NoReuse from './no-reuse.js';
import type { Job, Reservation } from './no-reuse.js';
import { ReplyCheck } from './reply-check.js';
import { watchReply } from './reply-timer.js';
import { hostPort } from '../format/host-port.js';
import type { ClientTls } from '../tls/options.js';
import { verdict } from './verdict.js';

export interface ClientOptions {
  program: string;
  direction: Direction;
  textPath: string;
  keyPath: string;
  port: number;
  host: string;
  /** true or false when asked for; undefined to decide by stderr and the input's size. */
  progress?: boolean;
  /** --offset: the key symbol to start at; null for the classic start at 0 (or the ledger's choice). */
  offset: number | null;
  /** --no-reuse: take the key symbols from the ledger, and record them there. */
  noReuse: boolean;
  /** null: plain TCP. */
  tls: ClientTls | null;
}

/** The reply is read into buffers of this size (two at most: one in flight to stdout while the socket reads into the other). */
const REPLY_BUFFER = 1 << 20;

export function runClient(options: ClientOptions): void {
  const { program, direction, port } = options;
  const server = direction === 'encrypt' ? 'enc_server' : 'dec_server';
  const where = options.host === '127.0.0.1' ? `on port ${port}` : `at ${hostPort(options.host, port)}`;
  let replyTimeoutMs: number;
  try {
    replyTimeoutMs = readReplyTimeout(process.env);
  } catch (err) {
    throw new UserError((err as Error).message);
  }
  const text = openInput(direction === 'encrypt' ? 'text' : 'ciphertext', options.textPath);
  const key = openInput('key', options.keyPath);
  if (key.fd === 0) throw new UserError("the key cannot be '-': give it a path (/dev/stdin when the text is not '-')");
  if ((options.noReuse || options.offset !== null) && !key.regular) {
    throw new UserError(`${options.noReuse ? '--no-reuse' : '--offset'} needs the key in a regular file`);
  }
  const symbols = text.regular ? checkText(text) : null;
  // The ledger records the job's key symbols before anything is sent.
  const ledger = options.noReuse ? reserveInLedger(key, symbols, options.offset) : null;
  const offset = ledger?.reservation.range.start ?? options.offset ?? 0;
  if (symbols !== null && key.regular) checkKey(key, symbols, offset);

  const textStream = text.regular ? undefined : text.fd === 0 ? process.stdin : createReadStream('', { fd: text.fd });
  const source = new PadSource({
    role: direction === 'encrypt' ? Role.ENCRYPT : Role.DECRYPT,
    text,
    key,
    symbols,
    keyChecked: symbols !== null && key.regular,
    textStream,
    keyOffset: offset,
    keyLimit: ledger && symbols === null ? { symbols: size(ledger.reservation), error: ledger.noReuse.stretchTooShort(key, ledger.reservation.range) } : undefined,
  });
  if (ledger && symbols === null) process.once('exit', () => giveBack(ledger, source.symbols));
  const check = new ReplyCheck({ sent: () => source.symbols, total: () => symbols ?? (source.readableEnded ? source.symbols : null) });
  const sink = new ResultSink(stdout(program), check);
  const stopProgress = wantProgress(options.progress, text.regular ? text.size : null, () => process.stderr.isTTY === true)
    ? startProgress(program, symbols, () => sink.symbols)
    : () => {};
  process.once('exit', stopProgress);
  sink.once('complete', () => {
    if (ledger) process.stderr.write(`${ledger.noReuse.usedLine(program, key, { start: offset, end: offset + source.symbols })}\n`);
    // Done: the server's end of the connection need not close first.
    endWhenIdle(EXIT_OK, textStream ? [socket, textStream] : [socket]);
  });
  const reply = new SocketSource({ pool: new BufferPool(REPLY_BUFFER, 2) });
  const socket = openConnection(options.host, port, options.tls, reply.onread);
  reply.attach(socket, true);
  // A regular file's job waits for the server from the start; a stream's only while the
  // server owes it symbols, so that a slow producer is not taken for a silent server.
  const waiting = (): boolean => symbols !== null || sink.symbols < source.symbols || source.readableEnded;
  watchReply(replyTimeoutMs, () => sink.symbols, waiting, () => {
    fail(program, new UserError(`the ${server} ${where} sent nothing for ${replyTimeoutMs} ms`, EXIT_SERVER));
  });

  // Every failure is judged once, on the receiving side, which a broken input also ends.
  pipeline(source, new FrameEncoder(), new SocketSink(socket), (err) => {
    if (err) socket.destroy();
  });
  const decoder = new FrameDecoder();
  pipeline(reply, decoder, sink, (err) => {
    stopProgress();
    const failed = verdict(
      {
        inputFailure: source.failure,
        done: sink.done,
        tls: options.tls !== null,
        opening: decoder.opening,
        replyFault: sink.fault,
        malformed: decoder.faulted,
        cutShort: decoder.cutShort,
        foreign: sink.foreign,
        serverError: sink.error,
        connectionError: err ?? null,
      },
      { program, server, where, host: options.host },
    );
    if (failed) fail(program, new UserError(failed.message, failed.exitCode));
    process.exitCode = EXIT_OK;
  });
}

/** Symbols in a regular key file: its length, less a final newline. */
function keyLength(key: InputFile): number {
  return countSymbols(key, key.size, key.size - 1);
}

function size(reservation: Reservation): number {
  return reservation.range.end - reservation.range.start;
}

/** A --no-reuse job: what the ledger was told, and the key symbols it reserved for it. */
interface Ledgered {
  noReuse: typeof NoReuse;
  job: Job;
  reservation: Reservation;
}

/** Reserves the job's key symbols in the ledger. Its modules (and node:os) are loaded only for a job that asks for it. */
function reserveInLedger(key: InputFile, symbols: number | null, offset: number | null): Ledgered {
  const noReuse = require('./no-reuse.js') as typeof NoReuse;
  const job: Job = { ledger: noReuse.ledgerPath(), key, keyLength: keyLength(key), symbols, offset };
  return { noReuse, job, reservation: noReuse.reserve(job) };
}

/** A stream's unused reservation goes back to the ledger; if that fails, it stays spent, which is safe. */
function giveBack({ noReuse, job, reservation }: Ledgered, sent: number): void {
  try {
    noReuse.trim(job, reservation, sent);
  } catch {
    // Nothing to do: the symbols stay recorded as used.
  }
}
