// What a finished job means for its user: from what the client saw of it, the one line to print and the exit code, or nothing when it succeeded.
import { describeError, EXIT_INPUT, EXIT_SERVER } from '../cli/errors.js';
import { ErrorCode } from '../protocol/frames.js';
import { article } from '../format/words.js';
import { isTlsRecord, tlsFailure, tlsRefusal } from './connect.js';

/** What the client saw of a job, once its reply has ended one way or another. */
export interface JobSeen {
  /** What stopped the input (a bad byte in a stream, a key too short, a read error), if anything did. */
  inputFailure: Error | null;
  /** DONE came, after every symbol, all of them checked. */
  done: boolean;
  /** The client connected with TLS. */
  tls: boolean;
  /** The first bytes of the reply, if any came. */
  opening: Buffer | null;
  /** What the client's check of the reply found wrong with it. */
  replyFault: string | null;
  /** The reply could not be read as frames (a frame over its limit: no otp server's). */
  malformed: boolean;
  /** The reply stopped inside a frame: a broken connection. */
  cutShort: boolean;
  /** A frame of a type no otp server sends. */
  foreign: boolean;
  /** The server's ERROR frame. */
  serverError: { code: number; message: string } | null;
  /** How the connection failed, if it did. */
  connectionError: Error | null;
}

export interface JobNames {
  program: string;
  /** enc_server or dec_server. */
  server: string;
  /** 'on port 5000', 'at host:5000'. */
  where: string;
  host: string;
}

export interface Verdict {
  message: string;
  exitCode: number;
}

/** The server's error codes that blame the client's input rather than the service: exit 1, as the client's own checks would. */
export const INPUT_FAULTS: ReadonlySet<number> = new Set([ErrorCode.BAD_TEXT, ErrorCode.BAD_KEY, ErrorCode.KEY_SHORT, ErrorCode.KEY_LAG]);

/** null when the job succeeded; else why not, in the order the causes are judged. */
export function verdict(seen: JobSeen, names: JobNames): Verdict | null {
  const { program, server, where } = names;
  if (seen.inputFailure) return describeError(seen.inputFailure);
  if (seen.done) return null;
  const cannotUse = (why: string): Verdict => ({ message: `cannot use the ${server} ${where}: ${why}`, exitCode: EXIT_SERVER });
  // A TLS record where frames were expected: a TLS server that answered plain bytes.
  if (!seen.tls && seen.opening && isTlsRecord(seen.opening)) return cannotUse(tlsRefusal(ErrorCode.TLS_REQUIRED, '')!);
  if (seen.replyFault) return { message: `the ${server} ${where} ${seen.replyFault}`, exitCode: EXIT_SERVER };
  // A reply that cannot be read as frames (an HTTP server's, say) is not the server's ERROR: it is no otp server at all.
  if ((seen.malformed && !seen.cutShort) || seen.foreign) {
    return { message: `the server ${where} does not speak the otp protocol: is it ${article(server)} ${server}?`, exitCode: EXIT_SERVER };
  }
  if (seen.serverError && !seen.cutShort) {
    const { code, message } = seen.serverError;
    const refusal = tlsRefusal(code, message);
    if (refusal) return cannotUse(refusal);
    if (code === ErrorCode.ROLE) return { message: `the server ${where} rejected ${program}: it is not ${article(server)} ${server}`, exitCode: EXIT_SERVER };
    if (code === ErrorCode.BUSY) return { message: `server busy: the ${server} ${where} is at its limit; try again later`, exitCode: EXIT_SERVER };
    return { message: `the server failed the job: ${message}`, exitCode: INPUT_FAULTS.has(code) ? EXIT_INPUT : EXIT_SERVER };
  }
  const err = seen.connectionError;
  const why = err ? (tlsFailure(err, names.host) ?? describeError(err).message) : 'the connection closed before the result was complete';
  const hint = (err as NodeJS.ErrnoException | null)?.code === 'ECONNREFUSED' ? ` (is ${server} running there?)` : '';
  return cannotUse(`${why}${hint}`);
}
