// A client's whole job: check the files, stream them to the server, write the result to stdout.
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream';
import { type Direction } from '../cipher/alphabet.js';
import { EXIT_INPUT, EXIT_OK, EXIT_SERVER, fail, reason, UserError } from '../cli/errors.js';
import { endWhenIdle } from '../cli/exit.js';
import { ErrorCode, Role } from '../protocol/frames.js';
import { readReplyTimeout } from '../cli/environment.js';
import { FrameReader } from '../streams/frame-reader.js';
import { FrameWriter } from '../streams/frame-writer.js';
import { PadSource } from './pad-source.js';
import { ResultSink } from './result-sink.js';
import { isTlsRecord, openConnection, tlsFailure, tlsRefusal } from './connect.js';
import { startProgress, wantProgress } from './progress.js';
import { checkKey, checkText, countSymbols, openInput, type InputFile } from './input-file.js';
import { ledgerPath } from './ledger.js';
import { reserve, stretchTooShort, trim, usedLine, type Job, type Reservation } from './no-reuse.js';
import { ReplyCheck } from './reply-check.js';
import { watchReply } from './reply-timer.js';
import { hostPort } from '../format/host-port.js';
import type { ClientTls } from '../tls/options.js';
import { article } from '../format/words.js';

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

/** The server's error codes that blame the client's input rather than the service. */
const INPUT_FAULTS: ReadonlySet<number> = new Set([ErrorCode.BAD_TEXT, ErrorCode.BAD_KEY, ErrorCode.KEY_SHORT, ErrorCode.KEY_LAG]);

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
  const job: Job | null = options.noReuse
    ? { ledger: ledgerPath(), key, keyLength: keyLength(key), symbols, offset: options.offset }
    : null;
  const reservation = job ? reserve(job) : null;
  const offset = reservation?.range.start ?? options.offset ?? 0;
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
    keyLimit: reservation && symbols === null ? { symbols: size(reservation), error: stretchTooShort(key, reservation.range) } : undefined,
  });
  if (job && reservation && symbols === null) process.once('exit', () => giveBack(job, reservation, source.symbols));
  const check = new ReplyCheck({ sent: () => source.symbols, total: () => symbols ?? (source.readableEnded ? source.symbols : null) });
  const sink = new ResultSink(process.stdout, check);
  const stopProgress = wantProgress(options.progress, text.regular ? text.size : null, process.stderr.isTTY === true)
    ? startProgress(program, symbols, () => sink.symbols)
    : () => {};
  process.once('exit', stopProgress);
  sink.once('complete', () => {
    if (reservation) process.stderr.write(`${usedLine(program, key, { start: offset, end: offset + source.symbols })}\n`);
    // Done: the server's end of the connection need not close first.
    endWhenIdle(EXIT_OK, textStream ? [socket, textStream] : [socket]);
  });
  const reader = new FrameReader(sink, { partial: true });
  const socket = openConnection(options.host, port, options.tls, reader.onread);
  const cannotUse = (why: string): never => fail(program, new UserError(`cannot use the ${server} ${where}: ${why}`, EXIT_SERVER));
  // A regular file's job waits for the server from the start; a stream's only while the
  // server owes it symbols, so that a slow producer is not taken for a silent server.
  const waiting = (): boolean => symbols !== null || sink.symbols < source.symbols || source.readableEnded;
  watchReply(replyTimeoutMs, () => sink.symbols, waiting, () => {
    fail(program, new UserError(`the ${server} ${where} sent nothing for ${replyTimeoutMs} ms`, EXIT_SERVER));
  });

  // Every failure is judged once, on the receiving side, which a broken input also ends.
  pipeline(source, new FrameWriter(socket), (err) => {
    if (err) socket.destroy();
  });
  reader.attach(socket, (err) => {
    stopProgress();
    if (source.failure) return fail(program, source.failure);
    if (sink.done) return void (process.exitCode = EXIT_OK);
    // A TLS record where frames were expected: a TLS server that answered plain bytes.
    if (!options.tls && reader.opening && isTlsRecord(reader.opening)) cannotUse(tlsRefusal(ErrorCode.TLS_REQUIRED, '')!);
    if (sink.fault) fail(program, new UserError(`the ${server} ${where} ${sink.fault}`, EXIT_SERVER));
    // A reply this client cannot read as frames (an HTTP server's, say) is not the server's
    // ERROR: it is no otp server at all.
    if ((reader.faulted && !reader.cutShort) || sink.foreign) {
      fail(program, new UserError(`the server ${where} does not speak the otp protocol: is it ${article(server)} ${server}?`, EXIT_SERVER));
    }
    if (sink.error && !reader.cutShort) {
      const { code, message } = sink.error;
      const refusal = tlsRefusal(code, message);
      if (refusal) cannotUse(refusal);
      if (code === ErrorCode.ROLE) {
        fail(program, new UserError(`the server ${where} rejected ${program}: it is not ${article(server)} ${server}`, EXIT_SERVER));
      }
      if (code === ErrorCode.BUSY) fail(program, new UserError(`server busy: the ${server} ${where} is at its limit; try again later`, EXIT_SERVER));
      fail(program, new UserError(`the server failed the job: ${message}`, INPUT_FAULTS.has(code) ? EXIT_INPUT : EXIT_SERVER));
    }
    const why = err ? (tlsFailure(err, options.host) ?? reason(err)) : 'the connection closed before the result was complete';
    const hint = (err as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED' ? ` (is ${server} running there?)` : '';
    cannotUse(`${why}${hint}`);
  });
}

/** Symbols in a regular key file: its length, less a final newline. */
function keyLength(key: InputFile): number {
  return countSymbols(key, key.size, key.size - 1);
}

function size(reservation: Reservation): number {
  return reservation.range.end - reservation.range.start;
}

/** A stream's unused reservation goes back to the ledger; if that fails, it stays spent, which is safe. */
function giveBack(job: Job, reservation: Reservation, sent: number): void {
  try {
    trim(job, reservation, sent);
  } catch {
    // Nothing to do: the symbols stay recorded as used.
  }
}
