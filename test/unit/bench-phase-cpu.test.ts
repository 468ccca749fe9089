// bench/phase-cpu.ts: a process tree's CPU counts its children while they run (PostgreSQL's
// backends), and each bench line comes with what every reader counted since the line before.
import { expect, test } from "bun:test";
import { cpuSeconds, linesWithCpuOf, treeCpuSeconds } from "../../bench/phase-cpu.ts";

test("a tree's CPU counts the children it has now, which the parent's own counters leave out", async () => {
  // A shell whose child spins until the shell is killed (by the pid started: the child goes with its stdin).
  const shell = Bun.spawn(["sh", "-c", "sh -c 'while :; do :; done' & wait"], { stdout: "ignore", stderr: "ignore" });
  try {
    const deadline = performance.now() + 20_000;
    while (treeCpuSeconds(shell.pid) - cpuSeconds(shell.pid) < 0.2 && performance.now() < deadline) await Bun.sleep(50);
    expect(treeCpuSeconds(shell.pid) - cpuSeconds(shell.pid)).toBeGreaterThanOrEqual(0.2);
  } finally {
    const children = await Bun.file(`/proc/${shell.pid}/task/${shell.pid}/children`).text().catch(() => "");
    for (const child of children.trim().split(" ").filter((pid) => pid !== "")) process.kill(Number(child), 9);
    shell.kill(9);
    await shell.exited;
  }
  expect(Number.isNaN(cpuSeconds(shell.pid))).toBe(true); // gone: NaN, and a tree of nothing
  expect(treeCpuSeconds(shell.pid)).toBe(0);
});

test("each line comes with each reader's count since the line before", async () => {
  let counter = 0;
  const pieces: Array<[number, string]> = [[5, '{"a":1}\n{"b"'], [12, ':2}\n\n']];
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = pieces.shift();
      if (next === undefined) return controller.close();
      counter = next[0]; // what the readers count by the time this piece arrives
      controller.enqueue(new TextEncoder().encode(next[1]));
    },
  }, { highWaterMark: 0 }); // a piece only when read: no read-ahead moves the counter early
  const seen: Array<{ line: string; n: number }> = [];
  counter = 1;
  for await (const { line, cpuSeconds: spent } of linesWithCpuOf(body, { n: () => counter })) seen.push({ line, n: spent.n! });
  expect(seen.map((entry) => entry.line)).toEqual(['{"a":1}', '{"b":2}']);
  expect(seen.map((entry) => entry.n)).toEqual([4, 7]); // from 1 at the call, 5 at the first line, 12 at the second
});
