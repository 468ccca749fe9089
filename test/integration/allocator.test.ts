// A role restarts itself with MIMALLOC_PURGE_DELAY set, in place: the pid we started is the
// process that serves (so kill -9 by that pid still stops it), and a user's own value is kept.
import { afterEach, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { limits } from "../../src/lib/limits.ts";
import { eventually, programCommand, tempDir } from "../support/vss.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function startPeer(env: Record<string, string | undefined>) {
  const dir = tempDir("allocator");
  const proc = Bun.spawn([...programCommand(), "peer", "--port", "0", "--data", join(dir, "p"), "--metrics-port", "off", "--insecure"], {
    env,
    stdout: "pipe",
    stderr: "pipe",
  });
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  return proc;
}

function environOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
}

test("a peer runs with the allocator's purge delay set, under the pid it was started as", async () => {
  const { MIMALLOC_PURGE_DELAY: _unset, ...env } = process.env;
  const proc = startPeer(env);
  await eventually("the restarted peer has the variable", 10_000, () => environOf(proc.pid).includes(`MIMALLOC_PURGE_DELAY=${limits.allocatorPurgeDelayMs}`) || environOf(proc.pid).filter((line) => line.startsWith("MIMALLOC")).join(",") || "none yet");
  process.kill(proc.pid, "SIGKILL");
  expect(await proc.exited).not.toBe(0); // the pid we hold was the serving process: kill -9 stopped it
});

test("a user's own MIMALLOC_PURGE_DELAY is kept", async () => {
  const proc = startPeer({ ...process.env, MIMALLOC_PURGE_DELAY: "7" });
  await Bun.sleep(1_000);
  expect(proc.exitCode).toBeNull();
  expect(environOf(proc.pid)).toContain("MIMALLOC_PURGE_DELAY=7");
});
