// Long-running roles stop cleanly on SIGINT/SIGTERM: close listeners, flush, then exit 0.
export function stopOnSignals(stop: () => Promise<void> | void): Promise<never> {
  return new Promise(() => {
    let stopping = false;
    const onSignal = (signal: string) => {
      if (stopping) return;
      stopping = true;
      Promise.resolve()
        .then(stop)
        .then(
          () => process.exit(0),
          (error) => {
            process.stderr.write(`mictlanx: error while stopping on ${signal}: ${(error as Error).message}\n`);
            process.exit(1);
          },
        );
    };
    process.on("SIGINT", () => onSignal("SIGINT"));
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    watchParent(() => onSignal("the loss of its parent"));
  });
}

/** How often a role started by `mictlanx up` checks that `up` is still there. */
export const parentCheckIntervalMs = 1_000;

/**
 * A role started by `mictlanx up` (which sets MICTLANX_PARENT_PID) stops by itself when `up`
 * is gone — even after a kill -9 of `up`, which no signal handler sees — instead of lingering
 * as an orphan that holds its port and data directory. `up` itself does the same when a
 * program that started it (a test, the soak) sets the variable.
 */
export function watchParent(stop: () => void): void {
  const parent = Number(process.env.MICTLANX_PARENT_PID);
  if (!Number.isInteger(parent) || parent <= 1) return;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      stop();
    }
  }, parentCheckIntervalMs);
  timer.unref();
}
