// How every subcommand ends: errors print one line on stderr and pick the exit code
// (0 ok, 1 failure, 2 usage, 4 not found). Nothing is swallowed. A closed stdout or stderr is
// handled in one place, src/commands/pipes.ts.
import { exitCodeFor, toMictlanxError } from "../lib/errors.ts";
import { printable } from "../lib/names.ts";
import { guardStdio, outputClosed } from "./pipes.ts";

export function action<A extends unknown[]>(work: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    guardStdio();
    try {
      await work(...args);
      // Done: exit now rather than when the event loop drains. A connection attempt to a host
      // that does not answer (a cut link, a firewall dropping SYNs) is given up after its
      // connect timeout, but the kernel keeps the socket trying for ~2 minutes, and Bun's
      // connect cannot be cancelled: the command would sit there saying nothing. What was
      // written goes out first.
      await flushed(process.stdout);
      await flushed(process.stderr);
      process.exit(process.exitCode ?? 0);
    } catch (error) {
      // The reader of stdout went away and the work stopped because of it: pipes.ts exits 0.
      if (outputClosed.aborted) return;
      const typed = toMictlanxError(error);
      // Messages quote names (keys, buckets) that may hold anything: never raw to a terminal.
      process.stderr.write(`mictlanx: ${printable(typed.message)}\n`);
      if (typed.code === "internal" && error instanceof Error && error.stack && process.env.MICTLANX_DEBUG) {
        process.stderr.write(`${error.stack}\n`);
      }
      process.exit(exitCodeFor(typed));
    }
  };
}

/**
 * Ends `stream` and resolves once everything written to it has gone out. (A callback on an
 * empty write comes too early in Bun: a 2 MiB write to a slow pipe was cut at 64 KiB.)
 */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.end(() => resolve());
  });
}
