// The SPM's table of routers: keyed by what routers send, so bounded and forgetful; a state like
// a peer's by the age of the last heartbeat, on the monotonic clock.
import { expect, test } from "bun:test";
import { RouterTable } from "../../src/roles/spm/routers.ts";
import { SteppedClock } from "../../src/lib/clock.ts";
import { vssLimits, vssTimings } from "../../src/lib/limits.ts";

const counters = { requests: 10, errors: 0, puts: 1, gets: 2, bytesIn: 3, bytesOut: 4 };
const timings = { suspectAfterMs: 3_000, downAfterMs: 10_000 };

test("a router goes up → suspect → down as its heartbeats age, and a wall clock step moves nothing", () => {
  const clock = new SteppedClock();
  const table = new RouterTable(clock, timings);
  table.heartbeat("127.0.0.1:7201", counters);
  clock.stepWall(3_600_000);
  expect(table.status()[0]?.state).toBe("up");
  clock.advance(timings.suspectAfterMs);
  expect(table.status()[0]?.state).toBe("suspect");
  clock.advance(timings.downAfterMs);
  expect(table.status()[0]).toMatchObject({ address: "127.0.0.1:7201", state: "down", requests: 10 });
});

test("rates come from two heartbeats; a counter that went down (a restart) gives no rate", () => {
  const clock = new SteppedClock();
  const table = new RouterTable(clock, timings);
  table.heartbeat("r", counters);
  clock.advance(1_000);
  table.heartbeat("r", { ...counters, requests: 110 });
  expect(table.status()[0]?.requestsPerSec).toBe(100);
  clock.advance(1_000);
  table.heartbeat("r", { ...counters, requests: 5 });
  expect(table.status()[0]?.requestsPerSec).toBe(0);
});

test(`the table holds at most ${vssLimits.routersTrackedMax} routers (the least recently heard from goes) and forgets one silent for ${vssTimings.routerForgetAfterMs} ms`, () => {
  const clock = new SteppedClock();
  const table = new RouterTable(clock, timings);
  for (let n = 0; n <= vssLimits.routersTrackedMax; n += 1) table.heartbeat(`10.0.${n >> 8}.${n & 255}:7201`, counters);
  expect(table.size).toBe(vssLimits.routersTrackedMax);
  expect(table.status().some((router) => router.address === "10.0.0.0:7201")).toBe(false);
  clock.advance(vssTimings.routerForgetAfterMs - 1);
  expect(table.status()).toHaveLength(vssLimits.routersTrackedMax); // not yet
  table.heartbeat("fresh:7201", counters);
  expect(table.size).toBe(vssLimits.routersTrackedMax);
  clock.advance(1);
  expect(table.status().map((router) => router.address)).toEqual(["fresh:7201"]);
});
