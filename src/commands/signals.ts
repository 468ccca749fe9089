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
  });
}
