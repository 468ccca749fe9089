// src/commands/pipes.ts in a process of its own whose stdout nobody reads: the stoppers run,
// the exit is 0 and quiet, and a stopper that never ends is cut off at outputClosedStopMsMax.
import { expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { tempDir } from "../support/vss.ts";
import { limits } from "../../src/lib/limits.ts";

setDefaultTimeout(60_000);
const pipes = resolve(import.meta.dir, "../../src/commands/pipes.ts");

/**
 * A Bun script given `stopper` (the body of an async function), run with its stdout into a pipe
 * whose reader closed before it started; it writes one line, then idles. Exit code, stderr, and
 * how long after its write it was over.
 */
async function withReaderGone(stopper: string): Promise<{ code: number; stderr: string; afterWriteMs: number }> {
  const dir = tempDir("pipes");
  try {
    const script = `
      const { guardStdio, beforeQuietExit } = await import(${JSON.stringify(pipes)});
      guardStdio();
      beforeQuietExit(async () => { ${stopper} });
      await Bun.write(${JSON.stringify(join(dir, "wrote"))}, String(Date.now()));
      process.stdout.write("a line nobody reads\\n");
      setInterval(() => {}, 1000); // busy with other work: only the pipe's handler ends it
    `;
    const shell = Bun.spawn(["sh", "-c", `mkfifo "$D/go"; { read go < "$D/go"; "$@" 2> "$D/err"; echo $? > "$D/status"; } | { exec 0<&-; echo go > "$D/go"; }`, "sh", process.execPath, "-e", script], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "inherit",
      env: { ...process.env, D: dir },
    });
    const over = await Promise.race([shell.exited.then(() => true), Bun.sleep(limits.outputClosedStopMsMax + 15_000).then(() => false)]);
    if (!over) process.kill(shell.pid, "SIGKILL");
    expect(over).toBe(true);
    const endedMs = Date.now();
    return {
      code: Number(readFileSync(join(dir, "status"), "utf8")),
      stderr: readFileSync(join(dir, "err"), "utf8"),
      afterWriteMs: endedMs - Number(readFileSync(join(dir, "wrote"), "utf8")),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the reader gone: the stoppers run, then exit 0 at once, nothing on stderr", async () => {
  const run = await withReaderGone(`await Bun.sleep(10); process.stderr.write("");`);
  expect(run).toMatchObject({ code: 0, stderr: "" });
  expect(run.afterWriteMs).toBeLessThan(limits.outputClosedStopMsMax);
});

test("a stopper that never ends is cut off at outputClosedStopMsMax", async () => {
  const run = await withReaderGone(`await new Promise(() => {});`);
  expect(run).toMatchObject({ code: 0, stderr: "" });
  expect(run.afterWriteMs).toBeGreaterThanOrEqual(limits.outputClosedStopMsMax);
  expect(run.afterWriteMs).toBeLessThan(limits.outputClosedStopMsMax + 10_000);
});
