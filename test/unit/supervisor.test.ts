// The supervisor's arithmetic at its edges: the restart backoff and the log tail `up` prints
// when it gives up on a child (the processes themselves: test/integration/up-supervise.test.ts).
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { limits } from "../../src/lib/limits.ts";
import { logTail, restartBackoffMs } from "../../src/local/supervisor.ts";

const dir = mkdtempSync(join(tmpdir(), "mictlanx-supervisor-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the restart backoff doubles from its base and stops at its max", () => {
  expect(restartBackoffMs(1)).toBe(limits.upRestartBackoffMsBase);
  expect(restartBackoffMs(2)).toBe(2 * limits.upRestartBackoffMsBase);
  expect(restartBackoffMs(limits.upRestartDeathsMax - 1)).toBeLessThanOrEqual(limits.upRestartBackoffMsMax);
  expect(restartBackoffMs(40)).toBe(limits.upRestartBackoffMsMax);
  // Every restart before the give-up fits the window, so a child that keeps dying is given up on.
  let total = 0;
  for (let deaths = 1; deaths < limits.upRestartDeathsMax; deaths += 1) total += restartBackoffMs(deaths);
  expect(total).toBeLessThan(limits.upRestartWindowMs);
  expect(() => restartBackoffMs(0)).toThrow("deaths counts from 1");
});

test("the log tail is the last upLogTailLines lines", () => {
  const path = join(dir, "short.log");
  const lines = Array.from({ length: limits.upLogTailLines + 5 }, (_, i) => `line ${i}`);
  writeFileSync(path, `${lines.join("\n")}\n\n`);
  expect(logTail(path)).toEqual(lines.slice(-limits.upLogTailLines));
  writeFileSync(path, "only\n");
  expect(logTail(path)).toEqual(["only"]);
});

test("a log past upLogTailBytesMax is read from its end only, without the line cut there", () => {
  const path = join(dir, "long.log");
  const lineBytes = 10_000; // so that upLogTailBytesMax holds fewer than upLogTailLines lines
  const count = Math.ceil(limits.upLogTailBytesMax / lineBytes) + 10;
  const lines = Array.from({ length: count }, (_, i) => String(i).padStart(lineBytes, "x"));
  writeFileSync(path, `${lines.join("\n")}\nlast words\n`);
  const tail = logTail(path);
  const wholeLines = Math.floor((limits.upLogTailBytesMax - "last words\n".length) / (lineBytes + 1));
  expect(wholeLines).toBeLessThan(limits.upLogTailLines);
  expect(tail).toEqual([...lines.slice(-wholeLines), "last words"]);
});

test("a log that cannot be read says so instead of throwing", () => {
  expect(logTail(join(dir, "missing.log"))[0]).toContain("cannot read");
});
