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
