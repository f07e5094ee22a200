// A client's whole job: check the files, stream them to the server, write the result to stdout.
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream';
import { type Direction } from '../alphabet.js';
import { EXIT_INPUT, EXIT_OK, EXIT_SERVER, fail, reason, UserError } from '../cli.js';
import { ErrorCode, Role } from '../protocol.js';
import { FrameDecoder } from '../streams/frame-decoder.js';
import { FrameWriter } from '../streams/frame-writer.js';
import { MemoryKeeper } from '../streams/memory-keeper.js';
import { PadSource } from '../streams/pad-source.js';
import { ResultSink } from '../streams/result-sink.js';
import { openConnection, tlsFailure, tlsRefusal } from './connect.js';
import { startProgress, wantProgress } from './progress.js';
import { checkFiles, countSymbols, openInput } from './input-file.js';
import { hostPort } from '../host-port.js';
import type { ClientTls } from '../tls-options.js';
import { article } from '../words.js';

export interface ClientOptions {
  program: string;
  direction: Direction;
  textPath: string;
  keyPath: string;
  port: number;
  host: string;
  /** true or false when asked for; undefined to decide by stderr and the input's size. */
  progress?: boolean;
  /** null: plain TCP. */
  tls: ClientTls | null;
}

/** The server's error codes that blame the client's input rather than the service. */
const INPUT_FAULTS: ReadonlySet<number> = new Set([ErrorCode.BAD_TEXT, ErrorCode.BAD_KEY, ErrorCode.KEY_SHORT, ErrorCode.KEY_LAG]);

export function runClient(options: ClientOptions): void {
  const { program, direction, port } = options;
  const server = direction === 'encrypt' ? 'enc_server' : 'dec_server';
  const where = options.host === '127.0.0.1' ? `on port ${port}` : `at ${hostPort(options.host, port)}`;
  const text = openInput(direction === 'encrypt' ? 'text' : 'ciphertext', options.textPath);
  const key = openInput('key', options.keyPath);
  if (key.fd === 0) throw new UserError("the key cannot be '-': give it a path (/dev/stdin when the text is not '-')");
  const symbols = !text.regular ? null : key.regular ? checkFiles(text, key) : countSymbols(text, text.size);

  const source = new PadSource({
    role: direction === 'encrypt' ? Role.ENCRYPT : Role.DECRYPT,
    text,
    key,
    symbols,
    keyChecked: symbols !== null && key.regular,
    textStream: text.regular ? undefined : text.fd === 0 ? process.stdin : createReadStream('', { fd: text.fd }),
  });
  const sink = new ResultSink(process.stdout);
  const stopProgress = wantProgress(options.progress, text.regular ? text.size : null, process.stderr.isTTY === true)
    ? startProgress(program, symbols, () => sink.symbols)
    : () => {};
  process.once('exit', stopProgress);
  // Done: no need to wait for the server's end of the connection to close as well.
  sink.once('complete', () => process.exit(EXIT_OK));
  const connection = openConnection(options.host, port, options.tls);
  const { socket } = connection;
  const cannotUse = (why: string): never => fail(program, new UserError(`cannot use the ${server} ${where}: ${why}`, EXIT_SERVER));

  // Every failure is judged once, on the receiving side, which a broken input also ends.
  pipeline(source, new FrameWriter(socket), (err) => {
    if (err) socket.destroy();
  });
  const decoder = new FrameDecoder({ partial: true });
  pipeline(socket, decoder, new MemoryKeeper(), sink, (err) => {
    stopProgress();
    if (source.failure) return fail(program, source.failure);
    if (sink.done) return void (process.exitCode = EXIT_OK);
    // A TLS record where frames were expected: a TLS server that answered plain bytes.
    if (connection.answeredInTls()) cannotUse(tlsRefusal(ErrorCode.TLS_REQUIRED, '')!);
    // A reply this client cannot read as frames (an HTTP server's, say) is not the server's
    // ERROR: it is no otp server at all.
    if ((decoder.faulted && !decoder.cutShort) || sink.foreign) {
      fail(program, new UserError(`the server ${where} does not speak the otp protocol: is it ${article(server)} ${server}?`, EXIT_SERVER));
    }
    if (sink.error && !decoder.cutShort) {
      const { code, message } = sink.error;
      const refusal = tlsRefusal(code, message);
      if (refusal) cannotUse(refusal);
      if (code === ErrorCode.ROLE) {
        fail(program, new UserError(`the server ${where} rejected ${program}: it is not ${article(server)} ${server}`, EXIT_SERVER));
      }
      fail(program, new UserError(`the server failed the job: ${message}`, INPUT_FAULTS.has(code) ? EXIT_INPUT : EXIT_SERVER));
    }
    const why = err ? (tlsFailure(err, options.host) ?? reason(err)) : 'the connection closed before the result was complete';
    const hint = (err as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED' ? ` (is ${server} running there?)` : '';
    cannotUse(`${why}${hint}`);
  });
}
