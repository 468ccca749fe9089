// Which commands restart themselves with allocator tuning, and with what argument vector.
import { expect, test } from "bun:test";
import { purgeDelayVariable, sameProgramArgv, wantsAllocatorTuning } from "../../src/commands/allocator.ts";

test("roles and bulk client commands want tuning; quick commands, help and a user's own setting do not", () => {
  const argv = (...args: string[]) => ["bun", "/x/main.ts", ...args];
  for (const command of ["spm", "peer", "router", "up", "bench", "put", "get"]) expect(wantsAllocatorTuning(argv(command, "--port", "1"), {})).toBe(true);
  expect(wantsAllocatorTuning(argv("--json", "get", "b/k"), {})).toBe(true); // flags before the subcommand
  for (const command of ["ls", "stat", "del", "status", "tui"]) expect(wantsAllocatorTuning(argv(command), {})).toBe(false);
  expect(wantsAllocatorTuning(argv(), {})).toBe(false);
  expect(wantsAllocatorTuning(argv("--version"), {})).toBe(false);
  expect(wantsAllocatorTuning(argv("peer"), { [purgeDelayVariable]: "5" })).toBe(false);
});

test("the same program again: a compiled binary gets only the user's arguments; bun keeps its flags and the script", () => {
  expect(sameProgramArgv(["bun", "/$bunfs/root/mictlanx", "peer", "--port", "7"], "/usr/bin/mictlanx", [])).toEqual(["/usr/bin/mictlanx", "peer", "--port", "7"]);
  expect(sameProgramArgv(["/b/bun", "/repo/src/main.ts", "up"], "/b/bun", ["--smol"])).toEqual(["/b/bun", "--smol", "/repo/src/main.ts", "up"]);
});
