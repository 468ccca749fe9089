// Long-running roles stop cleanly on SIGINT/SIGTERM: close listeners, flush, then exit 0.
// A command with work to undo (a put) stops it first, then exits as the shell expects (130).
import { MictlanxError, toMictlanxError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { printable } from "../lib/names.ts";

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

/** The shell's exit code for a command ended by a signal: 128 + its number (130 for Ctrl-C). */
const signalNumbers = { SIGINT: 2, SIGTERM: 15 } as const;
type StopSignal = keyof typeof signalNumbers;

export interface Interrupt {
  /** Aborted by the first SIGINT or SIGTERM, its reason a MictlanxError that names the signal. */
  readonly signal: AbortSignal;
  /** The work failed: if a signal was the cause, say so on stderr and exit 128 + its number. */
  exitIfInterrupted(error: unknown): void;
  /** The work is over: signals do what they did before. */
  dispose(): void;
}

/**
 * Ctrl-C or SIGTERM during work that must clean up before the process goes (a put abandons its
 * upload, so the SPM deletes what it wrote): the first signal aborts `signal` and the work
 * stops by itself; if it has not within `interruptStopMsMax`, or at a second signal, the
 * process exits at once. Either way the exit code is the shell's for that signal.
 */
export function interruptible(what: string, stopping: string): Interrupt {
  const controller = new AbortController();
  let received: StopSignal | undefined;
  let backstop: ReturnType<typeof setTimeout> | undefined;
  const onSignal = (name: StopSignal) => {
    if (received !== undefined) process.exit(128 + signalNumbers[name]);
    received = name;
    controller.abort(new MictlanxError("unavailable", `${what} interrupted by ${name}; ${stopping}`));
    backstop = setTimeout(() => {
      process.stderr.write(`mictlanx: ${what} interrupted by ${name}; stopping took longer than ${limits.interruptStopMsMax} ms, exiting anyway\n`);
      process.exit(128 + signalNumbers[name]);
    }, limits.interruptStopMsMax);
  };
  const onInterrupt = () => onSignal("SIGINT");
  const onTerminate = () => onSignal("SIGTERM");
  process.on("SIGINT", onInterrupt);
  process.on("SIGTERM", onTerminate);
  return {
    signal: controller.signal,
    exitIfInterrupted(error) {
      if (received === undefined) return;
      process.stderr.write(`mictlanx: ${printable(toMictlanxError(error).message)}\n`);
      process.exit(128 + signalNumbers[received]);
    },
    dispose() {
      process.off("SIGINT", onInterrupt);
      process.off("SIGTERM", onTerminate);
      clearTimeout(backstop);
    },
  };
}
