// The executable's entry. `mictlanx --version` answers from here, before the command line's
// modules (commander, zod, the limits) are evaluated: that alone took ~180 ms of a compiled
// binary's ~190 ms start (docs/performance.md). Everything else loads src/program.ts.
import pkg from "../package.json" with { type: "json" };

/** `mictlanx --version` or `-V` alone: nothing else to parse, so nothing else to load. */
export function isVersionOnly(args: readonly string[]): boolean {
  return args.length === 1 && (args[0] === "--version" || args[0] === "-V");
}

async function run(): Promise<void> {
  if (isVersionOnly(process.argv.slice(2))) {
    process.stdout.write(`${pkg.version}\n`);
    return;
  }
  const { execWithAllocatorTuning } = await import("./commands/allocator.ts");
  execWithAllocatorTuning(process.argv); // may restart this process with MIMALLOC_PURGE_DELAY set
  const { main } = await import("./program.ts");
  await main(process.argv);
}

// No top-level await here: it would keep the entry from being compiled with `bytecode: true`
// later (tried and dropped for now: Ink's modules have top-level await, docs/performance.md).
if (import.meta.main) {
  run().catch((error: unknown) => {
    // What the commands' own handler (commands/run.ts) did not catch: say it, fail.
    process.stderr.write(`mictlanx: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
