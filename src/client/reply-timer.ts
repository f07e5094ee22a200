// Gives up on a server that sends nothing for too long while its client waits for it.

/**
 * Calls `onSilence` once `heard()` has not changed for `ms` while `waiting()` is true; the
 * clock starts again whenever the client stops waiting (a stream's producer is slow, and
 * the server has answered all it was sent). Returns a function that stops the watch.
 */
export function watchReply(ms: number, heard: () => number, waiting: () => boolean, onSilence: () => void): () => void {
  let last = heard();
  let since = monotonicMs();
  const timer = setInterval(
    () => {
      const now = monotonicMs();
      const count = heard();
      if (count !== last || !waiting()) {
        last = count;
        since = now;
      } else if (now - since >= ms) {
        clearInterval(timer);
        onSilence();
      }
    },
    Math.min(1000, Math.max(5, ms / 10)),
  );
  timer.unref();
  return () => clearInterval(timer);
}

/** Milliseconds on a clock that never steps back; not `performance.now()`, whose first use loads perf_hooks (nine modules) into every job. */
function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}
