// How every subcommand ends: errors print one line on stderr and pick the exit code
// (0 ok, 1 failure, 2 usage, 4 not found). Nothing is swallowed.
import { exitCodeFor, toMictlanxError } from "../lib/errors.ts";

export function action<A extends unknown[]>(work: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await work(...args);
    } catch (error) {
      const typed = toMictlanxError(error);
      process.stderr.write(`mictlanx: ${typed.message}\n`);
      if (typed.code === "internal" && error instanceof Error && error.stack && process.env.MICTLANX_DEBUG) {
        process.stderr.write(`${error.stack}\n`);
      }
      process.exit(exitCodeFor(typed));
    }
  };
}
