// Run the commands that move many buffers with an allocator that keeps freed pages a while.
//
// Bun's allocator (mimalloc) reads its options from the environment once, at process start,
// so they cannot be set from inside. When one of these commands starts without
// MIMALLOC_PURGE_DELAY, it replaces itself (execve: same pid, same stdio, same arguments) with
// the same program and the variable set. A user's own MIMALLOC_PURGE_DELAY is left alone, and
// the roles `up` starts inherit the variable, so nothing is replaced twice.
import { limits } from "../lib/limits.ts";

export const purgeDelayVariable = "MIMALLOC_PURGE_DELAY";

/** Long-running roles, and client commands that move bulk data. */
const tunedCommands = new Set(["spm", "peer", "router", "up", "bench", "put", "get"]);

/** The argument vector that starts this same program again (compiled binary or `bun file.ts`). */
export function sameProgramArgv(argv: string[], execPath: string, execArgv: string[]): string[] {
  const script = argv[1] ?? "";
  // A `bun build --compile` executable sees its embedded entry as argv[1] ("/$bunfs/…"); the
  // operating system's argv has only the executable and the user's arguments.
  if (script.startsWith("/$bunfs/") || script.startsWith("B:/~BUN/")) return [execPath, ...argv.slice(2)];
  return [execPath, ...execArgv, script, ...argv.slice(2)];
}

/** The subcommand: the first argument that is not a flag. */
function subcommandOf(argv: string[]): string | undefined {
  return argv.slice(2).find((arg) => !arg.startsWith("-"));
}

export function wantsAllocatorTuning(argv: string[], env: NodeJS.ProcessEnv): boolean {
  const command = subcommandOf(argv);
  return command !== undefined && tunedCommands.has(command) && env[purgeDelayVariable] === undefined;
}

/** Does not return when it replaces the process; returns if there is nothing to do or it could not. */
export function execWithAllocatorTuning(argv: string[] = process.argv): void {
  if (!wantsAllocatorTuning(argv, process.env)) return;
  const env = { ...process.env, [purgeDelayVariable]: String(limits.allocatorPurgeDelayMs) };
  try {
    if (typeof process.execve !== "function") throw new Error("this runtime has no process.execve");
    process.execve(process.execPath, sameProgramArgv(argv, process.execPath, process.execArgv), env);
  } catch (error) {
    // Only slower without it, so say so and go on.
    process.stderr.write(`mictlanx: running without allocator tuning (could not restart with ${purgeDelayVariable}: ${String(error)})\n`);
  }
}
