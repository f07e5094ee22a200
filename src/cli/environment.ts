// Settings read from the environment, as strictly as the command line is read: the server's timeouts, the client's reply timeout.
import { DEFAULT_REPLY_TIMEOUT_MS, DEFAULT_TIMEOUTS, MAX_TIMEOUT_MS, REPLY_TIMEOUT_VARIABLE, TIMEOUT_VARIABLES, type Timeouts } from '../protocol/timeouts.js';

/**
 * The timeouts, with the environment's overrides: plain decimal whole numbers of
 * milliseconds from 1 to MAX_TIMEOUT_MS. Anything else throws, naming the variable: a
 * typo must not quietly become a default, a 1 ms timer or a timer that never fires.
 */
export function readTimeouts(env: NodeJS.ProcessEnv = process.env): Timeouts {
  const timeouts = { ...DEFAULT_TIMEOUTS };
  for (const [field, name] of Object.entries(TIMEOUT_VARIABLES) as [keyof Timeouts, string][]) {
    timeouts[field] = envMs(env, name, timeouts[field]);
  }
  return timeouts;
}

/** The client's reply timeout, read as strictly as the server's timeouts. */
export function readReplyTimeout(env: NodeJS.ProcessEnv = process.env): number {
  return envMs(env, REPLY_TIMEOUT_VARIABLE, DEFAULT_REPLY_TIMEOUT_MS);
}

function envMs(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined) return fallback;
  const value = /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : NaN;
  if (!(value <= MAX_TIMEOUT_MS)) {
    throw new Error(`${name}=${JSON.stringify(text)} is not a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`);
  }
  return value;
}
