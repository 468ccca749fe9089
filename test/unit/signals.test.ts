// `interruptible` (src/commands/signals.ts) in a process of its own, sent real signals: work that
// stops when told exits 128 + the signal's number with its message; work that does not stop is
// cut off at interruptStopMsMax; a second signal exits at once.
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { limits } from "../../src/lib/limits.ts";

const signals = resolve(import.meta.dir, "../../src/commands/signals.ts");

/** A process that runs `work` under interruptible() and prints "ready" once its handlers are in. */
function spawnWork(work: "stops" | "hangs") {
  const script = `
    const { interruptible } = await import(${JSON.stringify(signals)});
    const interrupt = interruptible("put", "what it had sent is being deleted");
    const stopped = new Promise((_, reject) => interrupt.signal.addEventListener("abort", () => reject(interrupt.signal.reason)));
    interrupt.signal.addEventListener("abort", () => process.stdout.write("aborted\\n"));
    process.stdout.write("ready\\n");
    try {
      await (${JSON.stringify(work)} === "stops" ? stopped : new Promise(() => setInterval(() => {}, 1000)));
    } catch (error) {
      interrupt.exitIfInterrupted(error);
      throw error;
    }
  `;
  return Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
}

/** Until the process has printed `line` (its stdout is read from where the last call left off). */
async function printed(proc: ReturnType<typeof spawnWork>, line: string): Promise<void> {
  const reader = proc.stdout.getReader();
  let seen = "";
  while (!seen.includes(`${line}\n`)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the process ended before it printed ${line}: ${seen}`);
    seen += new TextDecoder().decode(value);
  }
  reader.releaseLock();
}

async function signalled(proc: ReturnType<typeof spawnWork>, signal: "SIGINT" | "SIGTERM") {
  const startedMs = performance.now();
  proc.kill(signal);
  const code = await proc.exited;
  return { code, tookMs: performance.now() - startedMs, stderr: await new Response(proc.stderr).text() };
}

describe("interruptible", () => {
  test("work that stops when told: exit 130 for SIGINT, 143 for SIGTERM, with what was interrupted", async () => {
    for (const [signal, exitCode] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
      const proc = spawnWork("stops");
      await printed(proc, "ready");
      const { code, tookMs, stderr } = await signalled(proc, signal);
      expect(code).toBe(exitCode);
      expect(tookMs).toBeLessThan(limits.interruptStopMsMax);
      expect(stderr).toBe(`mictlanx: put interrupted by ${signal}; what it had sent is being deleted\n`);
    }
  });

  test("work that does not stop is cut off at interruptStopMsMax, saying so; a second signal exits at once", async () => {
    const hung = spawnWork("hangs");
    await printed(hung, "ready");
    const { code, tookMs, stderr } = await signalled(hung, "SIGINT");
    expect(code).toBe(130);
    expect(tookMs).toBeGreaterThanOrEqual(limits.interruptStopMsMax - 50);
    expect(tookMs).toBeLessThan(limits.interruptStopMsMax + 2_000);
    expect(stderr).toContain(`stopping took longer than ${limits.interruptStopMsMax} ms, exiting anyway`);

    const impatient = spawnWork("hangs");
    await printed(impatient, "ready");
    impatient.kill("SIGINT");
    await printed(impatient, "aborted"); // the first one was taken: a second is not merged into it
    const again = await signalled(impatient, "SIGINT");
    expect(again.code).toBe(130);
    expect(again.tookMs).toBeLessThan(limits.interruptStopMsMax / 2);
  }, 20_000);
});
