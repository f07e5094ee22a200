// Ends a program that is done by letting its event loop run dry, not by process.exit(), which can hang forever on Node 24.

/** How long whatever else holds the loop open may keep a finished program waiting. */
export const EXIT_BACKSTOP_MS = 2_000;

/** What holds the loop open: a socket, a stream. */
export interface Closable {
  destroy(): unknown;
}

/**
 * process.exit() shuts V8's worker threads down while the isolate still lives: a
 * background (Maglev) compile that needs a collection at that moment waits for the main
 * thread, which is waiting for it, and the process never exits (nodejs/node#64274 and
 * #64560; seen here once, an enc_client on Node 24.22.3 whose output was complete,
 * asleep in pthread_join for 20 minutes). Ending the loop instead tears the isolate
 * down first, which releases such a compile. So: the status is set, `open` is closed,
 * and the process ends when nothing else is left; only if something still holds the
 * loop after EXIT_BACKSTOP_MS does process.exit() end it, as before.
 */
export function endWhenIdle(code: number, open: Closable[]): void {
  process.exitCode = code;
  for (const handle of open) handle.destroy();
  setTimeout(() => process.exit(code), EXIT_BACKSTOP_MS).unref();
}
