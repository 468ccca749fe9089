// A reader that goes away: `mictlanx ls b | head -1`, `mictlanx get b/k -o - | head -c 100`.
//
// Bun ignores SIGPIPE, so a write to a pipe nobody reads fails with EPIPE, reported as an
// 'error' event on process.stdout; with no listener that event ends the process with a stack
// trace and exit 1, and a command waiting for 'drain' waits forever. Every command goes through
// `guardStdio` (src/commands/run.ts) and then behaves as `cat` and `ls` do when their reader
// leaves: it stops at once, quietly. The exit code is 0 rather than their death by SIGPIPE
// (141 in a shell): the reader chose to stop, nothing failed, and `set -o pipefail` scripts
// (`get … | head -c 100`) should not fail for it.
//
// When stdout is a socket rather than a pipe (Bun.spawn's "pipe", some process managers), the
// same departure shows as ECONNRESET (the reader closed with bytes unread) and is treated alike.
//
// A closed stderr is different: it only means nothing more can be reported, so the command
// carries on and exits with its own code. Any other stdout error (ENOSPC on a redirect to a
// full disk, EIO) is a failure: said on stderr, exit 1.
import { limits } from "../lib/limits.ts";
import { exitCodes } from "../lib/errors.ts";

const closed = new AbortController();
/** Aborted when stdout's reader has gone: stop the work and print nothing more. */
export const outputClosed: AbortSignal = closed.signal;

const stoppers = new Set<() => Promise<unknown>>();
let guarded = false;

/** Listen for errors on stdout and stderr (once per process). */
export function guardStdio(): void {
  if (guarded) return;
  guarded = true;
  process.stdout.on("error", onStdoutError);
  // Nothing can be reported on a stderr that is gone; the command's exit code still tells.
  process.stderr.on("error", () => {});
}

/**
 * Work to finish before the process exits because stdout's reader went away (abort transfers,
 * remove partial files); each gets at most `outputClosedStopMsMax`. Returns the way to take it
 * back when the work is done.
 */
export function beforeQuietExit(stop: () => Promise<unknown>): () => void {
  stoppers.add(stop);
  return () => stoppers.delete(stop);
}

/** The errors that mean the reader of stdout has gone. */
const readerGone = new Set(["EPIPE", "ECONNRESET"]);

function onStdoutError(error: NodeJS.ErrnoException): void {
  if (!readerGone.has(error.code ?? "")) {
    process.stderr.write(`mictlanx: cannot write to standard output: ${error.message}\n`);
    process.exit(exitCodes.failure);
  }
  if (closed.signal.aborted) return;
  closed.abort();
  void exitQuietly();
}

async function exitQuietly(): Promise<never> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, limits.outputClosedStopMsMax);
  });
  await Promise.race([Promise.allSettled([...stoppers].map((stop) => stop())), deadline]);
  clearTimeout(timer);
  process.exit(exitCodes.ok);
}
