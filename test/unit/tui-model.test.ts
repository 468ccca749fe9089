// The dashboard's data side without Ink: rates from counters, the minute of history, the
// connection state, selection, layout, keys and the poll loop.
import { describe, expect, test } from "bun:test";
import { healProgress, historyWindowMs, initialState, next, routerRate, selectedPeer, sparkline, type Action, type DashboardState, type HistoryPoint } from "../../src/tui/model.ts";
import { bannerText, computeLayout, peerColumns, scrollWindow } from "../../src/tui/layout.ts";
import { keyActions } from "../../src/tui/keys.ts";
import { bar, perSec, scrubSummary } from "../../src/tui/format.ts";
import { every, pollStatus, type PollResult, type StatusSource } from "../../src/tui/poller.ts";
import { forceColorFor } from "../../src/tui/terminal-env.ts";
import type { PeerStatus, VssStatus } from "../../src/protocol/spm.ts";
import { seededRandom } from "../support/random.ts";
const routerExtras = { state: "up" as const, puts: 0, gets: 0, bytesIn: 0, bytesOut: 0, putsPerSec: 0, getsPerSec: 0, bytesInPerSec: 0, bytesOutPerSec: 0 };

const spm = "127.0.0.1:7200";

function peer(id: string, overrides: Partial<PeerStatus> = {}): PeerStatus {
  return {
    id,
    address: `127.0.0.1:${7210 + Number(id.replace(/\D/g, "") || 0)}`,
    state: "up",
    draining: false,
    usedBytes: 0,
    capacityBytes: 100 * 2 ** 30,
    freeBytes: 100 * 2 ** 30,
    chunks: 0,
    replicas: 0,
    lastHeartbeatAgeMs: 300,
    opsPerSec: 0,
    ...overrides,
  };
}

function status(overrides: Partial<VssStatus> = {}): VssStatus {
  return {
    spm,
    vssId: "0190a5c4-0000-7000-8000-000000000000",
    catalog: { writable: true },
    drains: [],
    reconcile: { checking: 0, passes: 0, missingReplicas: 0, orphansCollected: 0, adoptedReplicas: 0, repairedReplicas: 0, lostChunks: 0, blocked: [] },
    uptimeMs: 60_000,
    peers: [peer("peer-0"), peer("peer-1"), peer("peer-2")],
    routers: [{ address: "127.0.0.1:7201", lastHeartbeatAgeMs: 0, requests: 0, requestsPerSec: 0, errors: 0, ...routerExtras }],
    balls: 0,
    buckets: 0,
    bytes: 0,
    chunks: 0,
    underReplicated: 0,
    garbage: 0,
    pendingUploads: 0,
    pendingUploadBytes: 0,
    healing: { active: false, queued: 0, inFlight: 0, healedChunks: 0, healedBytes: 0, trimmedReplicas: 0, movedChunks: 0, repairedCorrupt: 0, failures: 0, bytesPerSec: 0 },
    events: [],
    insecure: false,
    certificates: [],
    certificateWarnings: [],
    ...overrides,
  };
}

function start(nowMs = 1_000_000, size = { columns: 120, rows: 40 }): DashboardState {
  return initialState({ spm, intervalMs: 1000, size, nowMs });
}

function apply(state: DashboardState, steps: Array<[Action, number]>): DashboardState {
  return steps.reduce((current, [action, nowMs]) => next(current, action, nowMs), state);
}

describe("rates from counters", () => {
  test("requests/s from each router's counter, stamped with when the router sent it", () => {
    const t0 = 1_000_000;
    // At t0 the counter (100) is 200 ms old; 1 s later it is 300 and 100 ms old: 200 requests in 1.1 s.
    const s = apply(start(t0), [
      [{ type: "sample", status: status({ routers: [{ address: "r1", lastHeartbeatAgeMs: 200, requests: 100, requestsPerSec: 7, errors: 0, ...routerExtras }] }) }, t0],
      [{ type: "sample", status: status({ routers: [{ address: "r1", lastHeartbeatAgeMs: 100, requests: 300, requestsPerSec: 9, errors: 0, ...routerExtras }] }) }, t0 + 1000],
    ]);
    expect(s.routerRates.r1).toBeCloseTo(200 / 1.1, 6);
    expect(s.rates.routerRequestsPerSec).toBeCloseTo(200 / 1.1, 6);
  });

  test("first sight and a counter that went back (router restart) use the SPM's rate; the same heartbeat twice keeps the rate", () => {
    const first = routerRate(undefined, { requests: 50, requestsPerSec: 12, lastHeartbeatAgeMs: 0 }, 1000);
    expect(first.requestsPerSec).toBe(12);
    const later = routerRate(first, { requests: 150, requestsPerSec: 99, lastHeartbeatAgeMs: 0 }, 2000);
    expect(later.requestsPerSec).toBe(100);
    // Polled again before the router's next heartbeat: the counter's time has not moved.
    const same = routerRate(later, { requests: 150, requestsPerSec: 99, lastHeartbeatAgeMs: 500 }, 2500);
    expect(same.requestsPerSec).toBe(100);
    const restarted = routerRate(same, { requests: 3, requestsPerSec: 3, lastHeartbeatAgeMs: 0 }, 3000);
    expect(restarted.requestsPerSec).toBe(3);
  });

  test("stored bytes/s from the change in bytes between polls; ops/s sums the peers that are not down", () => {
    const t0 = 1_000_000;
    const s = apply(start(t0), [
      [{ type: "sample", status: status({ bytes: 1 << 20 }) }, t0],
      [
        {
          type: "sample",
          status: status({
            uptimeMs: 62_000,
            bytes: 5 << 20,
            peers: [peer("peer-0", { opsPerSec: 10 }), peer("peer-1", { opsPerSec: 5.5 }), peer("peer-2", { state: "down", opsPerSec: 1000 })],
            healing: { ...status().healing, bytesPerSec: 4096 },
          }),
        },
        t0 + 2000,
      ],
    ]);
    expect(s.rates.storedBytesPerSec).toBe(2 << 20);
    expect(s.rates.peerOpsPerSec).toBe(15.5);
    expect(s.rates.healBytesPerSec).toBe(4096);
    expect(s.history.at(-1)?.bytesPerSec).toBe((2 << 20) + 4096);
    // Deletes: the rate goes negative, the sparkline's bytes do not.
    const deleted = next(s, { type: "sample", status: status({ uptimeMs: 63_000, bytes: 4 << 20 }) }, t0 + 3000);
    expect(deleted.rates.storedBytesPerSec).toBe(-(1 << 20));
    expect(deleted.history.at(-1)?.bytesPerSec).toBe(0);
  });

  test("no deltas across an SPM restart (uptime went back) or on the first sample", () => {
    const t0 = 1_000_000;
    const first = next(start(t0), { type: "sample", status: status({ bytes: 10 << 20 }) }, t0);
    expect(first.rates.storedBytesPerSec).toBe(0);
    const restarted = next(first, { type: "sample", status: status({ uptimeMs: 1000, bytes: 0, routers: [{ address: "127.0.0.1:7201", lastHeartbeatAgeMs: 0, requests: 5000, requestsPerSec: 4, errors: 0, ...routerExtras }] }) }, t0 + 1000);
    expect(restarted.rates.storedBytesPerSec).toBe(0);
    expect(restarted.rates.routerRequestsPerSec).toBe(4);
  });
});

describe("history", () => {
  test("keeps only the last minute, whatever the number of polls", () => {
    const t0 = 5_000_000;
    let s = start(t0);
    for (let i = 0; i < 300; i += 1) s = next(s, { type: "sample", status: status({ uptimeMs: 60_000 + i * 1000 }) }, t0 + i * 1000);
    const nowMs = t0 + 299 * 1000;
    expect(s.history.length).toBe(60);
    expect(s.history.every((point) => point.atMs > nowMs - historyWindowMs)).toBe(true);
    expect(s.history[0]?.atMs).toBe(nowMs - 59_000);
    // Even at 10 polls a second the history stays bounded.
    for (let i = 0; i < 2000; i += 1) s = next(s, { type: "sample", status: status({ uptimeMs: 400_000 + i * 100 }) }, nowMs + i * 100);
    expect(s.history.length).toBeLessThanOrEqual(600);
  });

  test("sparkline: one character per slice of the minute, scaled to the largest, gaps as spaces", () => {
    const nowMs = 600_000; // a multiple of 1 s: slices of 1 s line up with the points
    const points: HistoryPoint[] = [1, 2, 4, 8].map((value, index) => ({ atMs: nowMs - (3 - index) * 1000, opsPerSec: value, requestsPerSec: 0, bytesPerSec: 0 }));
    const { line, max } = sparkline(points, (point) => point.opsPerSec, nowMs, 60);
    expect(max).toBe(8);
    expect(line.length).toBe(60);
    expect(line.slice(-4)).toBe("▁▂▄█");
    expect(line.slice(0, 56).trim()).toBe("");
    // A missing second (the SPM was unreachable) is a gap; zero is the lowest block.
    const gap = sparkline([points[0]!, { ...points[2]!, opsPerSec: 0 }, points[3]!], (point) => point.opsPerSec, nowMs, 60);
    expect(gap.line.slice(-4)).toBe("▁ ▁█");
    // Older than a minute: not drawn.
    expect(sparkline([{ atMs: nowMs - 61_000, opsPerSec: 5, requestsPerSec: 0, bytesPerSec: 0 }], (point) => point.opsPerSec, nowMs, 30).line.trim()).toBe("");
  });
});

describe("certificates", () => {
  test("while the SPM answers, the banner shows the first certificate warning and how many more", () => {
    const warnings = ["router router-0: its certificate expires in 6 days (2026-12-08T00:00:00.000Z); renew it with mictlanx certs issue and send it SIGHUP", "peer peer-1: its certificate expires in 20 days"];
    const one = next(start(0), { type: "sample", status: status({ certificateWarnings: warnings.slice(0, 1) }) }, 0);
    expect(bannerText(one)).toBe(`certificate: ${warnings[0]}`);
    const two = next(start(0), { type: "sample", status: status({ certificateWarnings: warnings }) }, 0);
    expect(bannerText(two)).toBe(`certificate: ${warnings[0]} (and 1 more: mictlanx status)`);
    expect(computeLayout(two).banner).toBeGreaterThan(0);
  });
});

describe("connection", () => {
  test("an error marks the SPM unreachable but keeps the last data; a sample recovers", () => {
    const t0 = 1_000_000;
    const up = next(start(t0), { type: "sample", status: status() }, t0);
    expect(up.connection.state).toBe("up");
    expect(bannerText(up)).toBeNull();
    const down1 = next(up, { type: "error", message: "spm 127.0.0.1:7200 refused the connection; is it running?" }, t0 + 1000);
    const down2 = next(down1, { type: "error", message: "spm 127.0.0.1:7200 refused the connection; is it running?" }, t0 + 2000);
    expect(down2.connection).toEqual({ state: "down", sinceMs: t0 + 1000, failures: 2, error: "spm 127.0.0.1:7200 refused the connection; is it running?" });
    expect(down2.status?.peers.length).toBe(3);
    expect(bannerText(down2)).toBe("SPM 127.0.0.1:7200 unreachable: refused the connection; is it running? — retrying every 1s (2 failed polls; showing data from 2.0s ago)");
    const back = next(down2, { type: "sample", status: status({ uptimeMs: 63_000 }) }, t0 + 3000);
    expect(back.connection).toEqual({ state: "up", sinceMs: t0 + 3000 });
    expect(bannerText(back)).toBeNull();
  });

  test("before the first answer: connecting, then unreachable with no data", () => {
    const s = start(0);
    expect(bannerText(s)).toBe(`connecting to SPM ${spm}…`);
    const failed = next(s, { type: "error", message: "timed out" }, 1000);
    expect(bannerText(failed)).toContain("SPM 127.0.0.1:7200 unreachable: timed out — retrying");
    expect(bannerText(failed)).toContain("no data yet");
  });
});

describe("selection", () => {
  test("stays within the peers; follows the peer when the list reorders; clamps when it shrinks", () => {
    let s = next(start(0), { type: "sample", status: status() }, 0);
    s = next(s, { type: "move", delta: -1 }, 1);
    expect(s.selected).toBe(0);
    s = next(s, { type: "move", delta: 5 }, 2);
    expect(s.selected).toBe(2);
    expect(selectedPeer(s)?.id).toBe("peer-2");
    // A new peer sorts before: the same peer stays selected.
    s = next(s, { type: "sample", status: status({ peers: [peer("peer-2"), peer("peer-0"), peer("peer-1"), peer("peer-00")] }) }, 3);
    expect(selectedPeer(s)?.id).toBe("peer-2");
    expect(s.selected).toBe(3);
    // The selected peer leaves and the list shrinks: the row stays in bounds.
    s = next(s, { type: "sample", status: status({ peers: [peer("peer-0")] }) }, 4);
    expect(s.selected).toBe(0);
    expect(selectedPeer(s)?.id).toBe("peer-0");
    s = next(s, { type: "sample", status: status({ peers: [] }) }, 5);
    expect(s.selected).toBe(0);
    expect(next(s, { type: "move", delta: 1 }, 6).selected).toBe(0);
    expect(next(s, { type: "open" }, 7).detail).toBeNull();
  });

  test("random moves and peer lists never leave the selection out of bounds (seeded)", () => {
    const { random } = seededRandom("tui-selection");
    let s = start(0);
    for (let step = 0; step < 2000; step += 1) {
      const roll = random();
      if (roll < 0.2) {
        const count = Math.floor(random() * 6);
        const ids = Array.from({ length: count }, () => `peer-${Math.floor(random() * 8)}`);
        s = next(s, { type: "sample", status: status({ peers: [...new Set(ids)].map((id) => peer(id)) }) }, step);
      } else if (roll < 0.9) {
        s = next(s, { type: "move", delta: Math.floor(random() * 7) - 3 }, step);
      } else {
        s = next(s, random() < 0.5 ? { type: "open" } : { type: "close" }, step);
      }
      const peers = s.status?.peers ?? [];
      expect(s.selected).toBeGreaterThanOrEqual(0);
      expect(s.selected).toBeLessThanOrEqual(Math.max(0, peers.length - 1));
      expect(s.selectedId).toBe(peers[s.selected]?.id ?? null);
    }
  });

  test("the detail pane opens on the selected peer, follows moves, ignores late replies, closes", () => {
    let s = next(start(0), { type: "sample", status: status() }, 0);
    s = apply(s, [
      [{ type: "move", delta: 1 }, 1],
      [{ type: "open" }, 2],
    ]);
    expect(s.detail).toEqual({ peerId: "peer-1", address: "127.0.0.1:7211", phase: "loading" });
    s = next(s, { type: "peerHealthError", peerId: "peer-1", message: "refused" }, 3);
    expect(s.detail?.phase).toBe("error");
    s = next(s, { type: "move", delta: 1 }, 4);
    expect(s.detail).toEqual({ peerId: "peer-2", address: "127.0.0.1:7212", phase: "loading" });
    // A reply for peer-1 arriving now is for a pane that moved on.
    s = next(s, { type: "peerHealthError", peerId: "peer-1", message: "late" }, 5);
    expect(s.detail?.phase).toBe("loading");
    s = next(s, { type: "close" }, 6);
    expect(s.detail).toBeNull();
  });
});

describe("layout", () => {
  test("at 80×24 the peers table, replication and events all fit; the frame never exceeds the rows", () => {
    const s = next(start(0, { columns: 80, rows: 24 }), { type: "sample", status: status() }, 0);
    const layout = computeLayout(s);
    expect(layout.peerLines).toBe(3);
    expect(layout.replication).toBe(3);
    expect(layout.events).toBeGreaterThanOrEqual(3);
    const used = 2 + 1 + layout.banner + (layout.peersTitle ? 2 : 1) + layout.peerLines + layout.replication + layout.routers + layout.throughput + layout.events;
    expect(used).toBeLessThanOrEqual(24);
  });

  test("with more peers than rows the table scrolls to keep the selection in view and secondary panels give way", () => {
    const many = status({ peers: Array.from({ length: 40 }, (_, i) => peer(`peer-${String(i).padStart(2, "0")}`)) });
    let s = next(start(0, { columns: 80, rows: 24 }), { type: "sample", status: many }, 0);
    s = next(s, { type: "move", delta: 30 }, 1);
    const layout = computeLayout(s);
    expect(layout.peerLines).toBeGreaterThanOrEqual(10);
    expect(s.selected).toBeGreaterThanOrEqual(layout.peerFirst);
    expect(s.selected).toBeLessThan(layout.peerFirst + layout.peerLines);
    const used = 3 + layout.banner + (layout.peersTitle ? 2 : 1) + layout.peerLines + layout.replication + layout.routers + layout.throughput + layout.events;
    expect(used).toBeLessThanOrEqual(24);
    expect(scrollWindow(0, 40, 10)).toBe(0);
    expect(scrollWindow(39, 40, 10)).toBe(30);
  });

  test("narrow terminals drop the address column before the state", () => {
    const peers = status().peers;
    expect(peerColumns(120, peers).address).toBeGreaterThan(0);
    expect(peerColumns(60, peers).address).toBe(0);
    expect(peerColumns(60, peers).state).toBeGreaterThan(0);
  });
});

describe("formatting", () => {
  test("bars fill in eighths; rates are short", () => {
    expect(bar(0.5, 4)).toEqual({ filled: "██", empty: "░░" });
    expect(bar(1 / 16, 2).filled).toBe("▏");
    expect(bar(2, 3)).toEqual({ filled: "███", empty: "" });
    expect(perSec(0)).toBe("0");
    expect(perSec(7.46)).toBe("7.5");
    expect(perSec(12_345)).toBe("12.3k");
    expect(healProgress(status({ healing: { ...status().healing, healedChunks: 30, queued: 10 } })).fraction).toBe(0.75);
  });
});

describe("keys", () => {
  const none = { upArrow: false, downArrow: false, pageUp: false, pageDown: false, home: false, end: false, return: false, escape: false, ctrl: false };
  test("arrows, Enter, Esc, q and Ctrl-C; a run of characters counts key by key", () => {
    expect(keyActions("", { ...none, downArrow: true })).toEqual([{ type: "move", delta: 1 }]);
    expect(keyActions("", { ...none, escape: true })).toEqual([{ type: "close" }]);
    expect(keyActions("\r", { ...none, return: true })).toEqual([{ type: "open" }]);
    expect(keyActions("c", { ...none, ctrl: true })).toEqual([{ type: "quit" }]);
    expect(keyActions("j\r", none)).toEqual([{ type: "move", delta: 1 }, { type: "open" }]);
    expect(keyActions("xq", none)).toEqual([{ type: "quit" }]);
  });
});

describe("poll loop", () => {
  test("reports failures and keeps asking; recovers; does not overlap; stops", async () => {
    let calls = 0;
    let running = 0;
    let overlapped = false;
    const source: StatusSource = {
      status: async () => {
        calls += 1;
        running += 1;
        if (running > 1) overlapped = true;
        await Bun.sleep(30); // slower than the interval
        running -= 1;
        if (calls <= 2) throw new Error(`refused ${calls}`);
        return status();
      },
      peerHealth: async () => {
        throw new Error("unused");
      },
      close: () => {},
    };
    const results: PollResult[] = [];
    const loop = pollStatus(source, 10, (result) => results.push(result));
    while (results.length < 4) await Bun.sleep(5);
    loop.stop();
    const seen = results.length;
    await Bun.sleep(80);
    expect(results.length).toBe(seen);
    expect(results.slice(0, 3).map((result) => (result.type === "error" ? result.message : "sample"))).toEqual(["refused 1", "refused 2", "sample"]);
    expect(overlapped).toBe(false);
  });

  test("every() runs start to start at the interval, a slow run delaying the next", async () => {
    const starts: number[] = [];
    const loop = every(40, async () => {
      starts.push(performance.now());
      await Bun.sleep(starts.length === 2 ? 70 : 30); // the second run overruns the interval
    });
    while (starts.length < 4) await Bun.sleep(5);
    loop.stop();
    const gaps = starts.slice(1).map((at, index) => at - (starts[index] ?? 0));
    expect(gaps[0]).toBeGreaterThanOrEqual(38); // on time: 40 ms start to start, not 40 after the end
    expect(gaps[0]).toBeLessThan(65); // 40 after the end would be 70
    expect(gaps[1]).toBeGreaterThanOrEqual(68); // the overrun pushes the next start, no overlap
  });
});

test("put and get rates and bytes in the header are the routers' rates, summed", () => {
  const router = (address: string, putsPerSec: number, getsPerSec: number, bytesInPerSec: number, bytesOutPerSec: number) => ({
    address, lastHeartbeatAgeMs: 0, requests: 0, requestsPerSec: 0, errors: 0, ...routerExtras, putsPerSec, getsPerSec, bytesInPerSec, bytesOutPerSec,
  });
  const t0 = 1_000_000;
  const state = next(start(t0), { type: "sample", status: status({ routers: [router("r1", 10, 20, 1000, 2000), router("r2", 5, 1, 500, 100)] }) }, t0);
  expect(state.rates.putsPerSec).toBe(15);
  expect(state.rates.getsPerSec).toBe(21);
  expect(state.rates.putBytesPerSec).toBe(1500);
  expect(state.rates.getBytesPerSec).toBe(2100);
});

describe("forceColorFor: the dashboard's colour does not depend on CI=true", () => {
  test("colour on by default, also under CI; depth left to detection", () => {
    expect(forceColorFor({})).toBe("true");
    expect(forceColorFor({ CI: "true", TERM: "screen" })).toBe("true");
  });
  test("the user's FORCE_COLOR wins, NO_COLOR and TERM=dumb turn colour off", () => {
    expect(forceColorFor({ FORCE_COLOR: "0", CI: "true" })).toBeUndefined();
    expect(forceColorFor({ FORCE_COLOR: "3" })).toBeUndefined();
    expect(forceColorFor({ NO_COLOR: "1" })).toBe("0");
    expect(forceColorFor({ NO_COLOR: "" })).toBe("true");
    expect(forceColorFor({ TERM: "dumb" })).toBe("0");
  });
});

describe("the scrub line of the detail pane", () => {
  const base = { passes: 0, bytesScanned: 0, chunksScanned: 0, corruptFound: 0, passProgress: 0, ratePerSec: 8 * 2 ** 20 };
  test("off, the first pass, waiting between passes, and corruption found", () => {
    expect(scrubSummary({ ...base, state: "off", ratePerSec: 0 }, 0)).toBe("scrub: off");
    expect(scrubSummary({ ...base, state: "scanning", passProgress: 0.999 }, 0)).toBe("scrub: pass 1, 99 %, 0 corrupt, no full pass yet, 8.0 MiB/s");
    const waiting = { ...base, state: "waiting" as const, passes: 4, passProgress: 1, corruptFound: 1234, lastPassMs: 1_000 };
    expect(scrubSummary(waiting, 1_000 + 2 * 3_600_000 + 180_000)).toBe("scrub: pass 4 done, 1,234 corrupt, last full pass 2h03m ago, 8.0 MiB/s");
  });
});
