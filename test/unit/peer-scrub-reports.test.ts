// The peer's reports of what its scrub finds (src/roles/peer/scrub-reports.ts), to a real
// RpcServer on loopback that answers `replica.corrupt` when the test lets it: every finding is
// kept among the recent errors; at most scrubReportsInFlightMax reports are in flight, the rest
// are logged and left to the next pass; a chunk no SPM could know is not reported.
import { afterAll, expect, test } from "bun:test";
import { vssLimits } from "../../src/lib/limits.ts";
import { RpcServer } from "../../src/net/server.ts";
import { RpcPool } from "../../src/net/pool.ts";
import { SpmSet } from "../../src/net/spm-set.ts";
import { defineOps } from "../../src/protocol/envelope.ts";
import { spmOps } from "../../src/protocol/spm.ts";
import { scrubReporter } from "../../src/roles/peer/scrub-reports.ts";
import type { ScrubFinding } from "../../src/storage/index.ts";

const reportOps = defineOps({ "replica.corrupt": spmOps["replica.corrupt"] });
const received: { objectId: string; index: number; peerId: string; detail: string }[] = [];
let open: () => void = () => undefined;
let gate = new Promise<void>((resolve) => (open = resolve));
const server = new RpcServer({
  host: "127.0.0.1",
  port: 0,
  ops: reportOps,
  handlers: {
    "replica.corrupt": async (args) => {
      received.push(args);
      await gate;
      return { accepted: true };
    },
  },
});
server.listen();
const pool = new RpcPool({ role: "peer" });
afterAll(() => {
  pool.close();
  server.stop();
});

const objectId = "0192d0c4-7a5e-7000-8000-00000000abcd";
const finding = (index: number, ball = objectId): ScrubFinding => ({
  ref: { bucket: "b", ball, index },
  shardId: 1,
  offset: index * 100,
  seq: index + 1,
  detail: `chunk b/${ball}_${index} in shard 1 failed its checksum`,
  pass: 1,
});

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within 10 s`);
    await Bun.sleep(5);
  }
}

test("reports are bounded in flight; each finding is remembered; the rest wait for the next pass", async () => {
  const logs: string[] = [];
  const remembered: string[] = [];
  const report = scrubReporter(
    { log: (line) => logs.push(line) },
    { peerId: "peer-7", pool, spm: new SpmSet(pool, [`127.0.0.1:${server.port}`]), remember: (op, code, message) => remembered.push(`${op} ${code}: ${message}`) },
  );
  const over = 5;
  for (let i = 0; i < vssLimits.scrubReportsInFlightMax + over; i += 1) report(finding(i));
  await until("the reports in flight arrive", () => received.length === vssLimits.scrubReportsInFlightMax);
  expect(remembered).toHaveLength(vssLimits.scrubReportsInFlightMax + over);
  expect(remembered[0]).toBe(`scrub corrupt: chunk b/${objectId}_0 in shard 1 failed its checksum`);
  expect(logs.filter((line) => line.includes("reported again next pass"))).toHaveLength(over);
  expect(received[0]).toEqual({ objectId, index: 0, peerId: "peer-7", detail: `scrub pass 1: chunk b/${objectId}_0 in shard 1 failed its checksum` });

  // Once the SPM answers, there is room again (a report turned away says so in the log).
  open();
  const turnedAway = () => logs.filter((line) => line.includes("reported again next pass")).length;
  for (let attempt = 0; ; attempt += 1) {
    expect(attempt).toBeLessThan(1000);
    const before = turnedAway();
    report(finding(100));
    if (turnedAway() === before) break;
    await Bun.sleep(5);
  }
  await until("the new report arrives", () => received.some((r) => r.index === 100));

  // A ball that is not an object id cannot be repaired by any SPM: kept and logged only.
  const before = received.length;
  report(finding(1, "not an object id"));
  expect(remembered.at(-1)).toContain("not an object id_1");
  expect(logs.at(-1)).toContain("not named by a VSS object id");
  await Bun.sleep(50);
  expect(received.length).toBe(before);
});

test("without an SPM a finding is only remembered", () => {
  const remembered: string[] = [];
  const report = scrubReporter({}, { peerId: "p", pool, remember: (op) => remembered.push(op) });
  report(finding(1));
  expect(remembered).toEqual(["scrub"]);
});
