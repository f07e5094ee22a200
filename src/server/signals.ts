// How a server's main process takes signals: SIGTERM and SIGINT drain, then it dies by that same signal; a second one kills at once; SIGHUP reloads, breaking nothing.
import { constants } from 'node:os';

type StopSignal = 'SIGTERM' | 'SIGINT';

/**
 * `drain` stops accepting and resolves once the jobs in flight are done (or cut after
 * the grace time); `kill` ends them at once. Either way the process then dies by the
 * signal it got, as a program without a handler would, so that a shell prints
 * `Terminated` and a script interrupted with Ctrl-C stops (bash waits for its
 * foreground child and stops itself only if the child died by SIGINT).
 */
export function handleStopSignals(drain: () => Promise<void>, kill: () => void, reload: () => void): void {
  let stopping = false;
  const onSignal = (signal: StopSignal): void => {
    if (stopping) {
      kill();
      return dieBy(signal);
    }
    stopping = true;
    void drain().then(() => dieBy(signal));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A reload (a closed terminal sends the same signal) ends no job in flight.
  process.on('SIGHUP', () => {
    if (!stopping) reload();
  });
}

/** Restores the signal's default action and raises it. */
export function dieBy(signal: StopSignal): void {
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  // Only if the signal is blocked somehow: the exit status a shell gives a death by it.
  setTimeout(() => process.exit(128 + constants.signals[signal]), 1000);
}
