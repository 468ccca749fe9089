// The dashboard drawn by Ink into a fake terminal (a stdout object with columns, rows and a
// write() that keeps each frame), from fixed states and then live with a fake SPM and keys.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";
import type { PeerStatus, VssStatus } from "../../src/protocol/spm.ts";
import type { PeerHealth } from "../../src/protocol/peer.ts";
import { initialState, next, type Action, type DashboardState } from "../../src/tui/model.ts";
import type { StatusSource } from "../../src/tui/poller.ts";
const routerExtras = { state: "up" as const, puts: 0, gets: 0, bytesIn: 0, bytesOut: 0, putsPerSec: 0, getsPerSec: 0, bytesInPerSec: 0, bytesOutPerSec: 0 };

// Chalk picks its colour level when it loads, from the environment; force colours for the
// frames here (ANSI codes are what we check), then put the environment back for other tests.
let ink: typeof import("ink");
let Dashboard: typeof import("../../src/tui/components.tsx").Dashboard;
let App: typeof import("../../src/tui/app.tsx").App;
beforeAll(async () => {
  const previous = process.env.FORCE_COLOR;
  process.env.FORCE_COLOR = "1";
  try {
    ink = await import("ink");
    ({ Dashboard } = await import("../../src/tui/components.tsx"));
    ({ App } = await import("../../src/tui/app.tsx"));
    // If something loaded chalk (Ink's colouring) before this file, the variable came too late.
    const { default: chalk } = await import("chalk");
    if (chalk.level === 0) chalk.level = 1;
  } finally {
    if (previous === undefined) delete process.env.FORCE_COLOR;
    else process.env.FORCE_COLOR = previous;
  }
});

const spm = "127.0.0.1:7200";
const red = "\u001B[31m";
const green = "\u001B[32m";
const redBackground = "\u001B[41m";

function plain(text: string): string {
  // biome-ignore lint: the escape character is the point
  return text.replace(/\u001B\[[0-9;?]*[A-Za-z]/g, "");
}

/** A terminal of a given size that keeps every frame Ink writes (debug mode: whole frames). */
class FakeStdout extends EventEmitter {
  readonly isTTY = true;
  frames: string[] = [];
  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
  }
  write(chunk: string, encodingOrCallback?: unknown, callback?: unknown): boolean {
    if (chunk.length > 0 && !/^(\u001B\[[0-9;?]*[A-Za-z])+$/.test(chunk)) this.frames.push(chunk);
    const done = typeof encodingOrCallback === "function" ? encodingOrCallback : callback;
    if (typeof done === "function") queueMicrotask(done as () => void);
    return true;
  }
  get last(): string {
    return this.frames.at(-1) ?? "";
  }
  resize(columns: number, rows: number): void {
    this.columns = columns;
    this.rows = rows;
    this.emit("resize");
  }
}

/** Keys typed into the app: a TTY-like stream Ink can put in raw mode. */
function fakeStdin(): PassThrough & { isTTY: boolean; setRawMode: (on: boolean) => void } {
  return Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => {}, ref: () => {}, unref: () => {} });
}

function peer(id: string, overrides: Partial<PeerStatus> = {}): PeerStatus {
  return {
    id,
    address: `127.0.0.1:${7210 + Number(id.replace(/\D/g, "") || 0)}`,
    state: "up",
    draining: false,
    usedBytes: 3 * 2 ** 30,
    capacityBytes: 10 * 2 ** 30,
    freeBytes: 7 * 2 ** 30,
    chunks: 1234,
    replicas: 1234,
    lastHeartbeatAgeMs: 300,
    opsPerSec: 12,
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
    uptimeMs: 3_723_000,
    peers: [peer("peer-0"), peer("peer-1", { state: "down", lastHeartbeatAgeMs: 14_000 }), peer("peer-2", { state: "suspect", lastHeartbeatAgeMs: 1500 })],
    routers: [{ address: "127.0.0.1:7201", lastHeartbeatAgeMs: 200, requests: 5000, requestsPerSec: 42, errors: 0, ...routerExtras }],
    balls: 1500,
    buckets: 2,
    bytes: 5 * 2 ** 30,
    chunks: 3000,
    underReplicated: 10,
    garbage: 3,
    pendingUploads: 0,
    pendingUploadBytes: 0,
    healing: { active: true, queued: 10, inFlight: 2, healedChunks: 30, healedBytes: 30 * 2 ** 20, trimmedReplicas: 0, movedChunks: 0, repairedCorrupt: 0, failures: 0, bytesPerSec: 8 * 2 ** 20 },
    events: [
      { atMs: 1_000_000, kind: "peer_joined", message: "peer peer-0 joined at 127.0.0.1:7210" },
      { atMs: 1_001_000, kind: "peer_down", message: "peer peer-1 is down (no heartbeat for 10 s)" },
    ],
    insecure: false,
    certificates: [],
    certificateWarnings: [],
    ...overrides,
  };
}

function stateAt(size: { columns: number; rows: number }, steps: Action[]): DashboardState {
  let state = initialState({ spm, intervalMs: 1000, size, nowMs: 2_000_000 });
  steps.forEach((action, index) => {
    state = next(state, action, 2_000_000 + index * 1000);
  });
  return state;
}

const renderTimes: number[] = [];

/** Draw a fixed state once and return the frame. */
async function frameOf(state: DashboardState): Promise<string> {
  const stdout = new FakeStdout(state.size.columns, state.size.rows);
  const instance = ink.render(<Dashboard state={state} />, {
    stdout: stdout as unknown as NodeJS.WriteStream,
    stdin: fakeStdin() as unknown as NodeJS.ReadStream,
    debug: true,
    patchConsole: false,
    exitOnCtrlC: false,
    onRender: ({ renderTime }) => renderTimes.push(renderTime),
  });
  await instance.waitUntilRenderFlush();
  instance.unmount();
  return stdout.frames[0] ?? "";
}

function linesOf(frame: string): string[] {
  return plain(frame).split("\n");
}

afterAll(() => {
  if (renderTimes.length > 0) {
    const sorted = [...renderTimes].sort((a, b) => a - b);
    console.log(`[tui] ${sorted.length} frames, render time median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(2)} ms, max ${sorted.at(-1)?.toFixed(2)} ms`);
  }
});

describe("dashboard from fixed states", () => {
  test("peer states in colour: down red, up green; the table shows every column", async () => {
    const frame = await frameOf(stateAt({ columns: 120, rows: 40 }, [{ type: "sample", status: status() }]));
    const downRow = frame.split("\n").find((line) => plain(line).includes("peer-1"));
    expect(downRow).toBeDefined();
    expect(downRow).toMatch(new RegExp(`${escape(red)}(\\u001B\\[[0-9;]*m)*down`));
    const upRow = frame.split("\n").find((line) => plain(line).includes("peer-0"));
    expect(upRow).toMatch(new RegExp(`${escape(green)}(\\u001B\\[[0-9;]*m)*up`));
    expect(upRow).not.toContain(red);
    const text = linesOf(frame).join("\n");
    for (const column of ["PEER", "ADDRESS", "STATE", "USED", "CHUNKS", "OPS/S", "LAST HB"]) expect(text).toContain(column);
    expect(text).toContain("3.0 GiB/10.0 GiB");
    expect(text).toContain("peers 1/3 up");
    expect(text).toContain("up 1h02m");
    expect(text).toMatch(/› peer-0/);
    expect(text).toContain("127.0.0.1:7201");
    expect(text).toContain("42 req/s");
    expect(text).toContain("peer peer-1 is down (no heartbeat for 10 s)");
  });

  test("names and messages that hold control or bidi characters are drawn escaped, never raw", async () => {
    const hostile = status({
      // (the id column is sized by the longest raw id: a second, longer id makes room for the escape)
      peers: [peer("peer-\u009b0", { address: "127.0.0.1:7210" }), peer("peer-with-long-id")],
      routers: [{ address: "127.0.0.1:7201\u202e", lastHeartbeatAgeMs: 200, requests: 1, requestsPerSec: 1, errors: 0, ...routerExtras }],
      events: [{ atMs: 1_000_000, kind: "peer_down", message: "chunk of b/evil\u001b]0;owned\u0007 lost" }],
      healing: { active: true, queued: 1, inFlight: 0, healedChunks: 0, healedBytes: 0, trimmedReplicas: 0, movedChunks: 0, repairedCorrupt: 0, failures: 1, bytesPerSec: 0, lastError: "copy of b/k\u2066x failed" },
    });
    const frame = await frameOf(stateAt({ columns: 140, rows: 40 }, [{ type: "sample", status: hostile }]));
    const text = plain(frame);
    expect(text).toContain("peer-\\u{9b}0");
    expect(text).toContain("127.0.0.1:7201\\u{202e}");
    expect(text).toContain("chunk of b/evil\\u{1b}]0;owned\\u{7} lost");
    expect(text).toContain("copy of b/k\\u{2066}x failed");
    // Nothing of theirs reaches the terminal raw (Ink's own colour codes are all there is of ESC).
    expect(frame).not.toMatch(/[\u0000-\u0009\u000b-\u001a\u001c-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(frame.replace(/\u001B\[[0-9;?]*[A-Za-z]/g, "")).not.toContain("\u001b");
  });

  test("routers show their state in the peers' colours: a down router red, an up one green", async () => {
    const routers = [
      { address: "127.0.0.1:7201", lastHeartbeatAgeMs: 200, requests: 5000, requestsPerSec: 42, errors: 0, ...routerExtras },
      { address: "127.0.0.1:7202", lastHeartbeatAgeMs: 40_000, requests: 10, requestsPerSec: 0, errors: 0, ...routerExtras, state: "down" as const },
    ];
    const frame = await frameOf(stateAt({ columns: 120, rows: 40 }, [{ type: "sample", status: status({ routers }) }]));
    const rowOf = (address: string) => frame.split("\n").find((line) => plain(line).includes(address) && plain(line).includes("req/s"));
    expect(rowOf("127.0.0.1:7202")).toMatch(new RegExp(`${escape(red)}(\\u001B\\[[0-9;]*m)*down`));
    expect(rowOf("127.0.0.1:7201")).toMatch(new RegExp(`${escape(green)}(\\u001B\\[[0-9;]*m)*up`));
    // Condensed to one line on a short terminal, the states stay.
    const short = plain(await frameOf(stateAt({ columns: 120, rows: 16 }, [{ type: "sample", status: status({ routers }) }])));
    expect(short).toMatch(/127\.0\.0\.1:7202 down/);
  });

  test("a drain: the header counts draining peers; the replication panel says what is left and what blocks it", async () => {
    const drains = [
      {
        peerId: "peer-0",
        remainingChunks: 120,
        movedChunks: 80,
        blocked: [{ reason: "rf" as const, chunks: 12, balls: 3, message: "12 chunks of 3 balls kept at rf up to 3: only 2 other peers take data; start another peer, lower those balls' rf, or undrain" }],
      },
    ];
    const peers = [peer("peer-0", { draining: true }), peer("peer-1"), peer("peer-2")];
    const frame = await frameOf(stateAt({ columns: 200, rows: 40 }, [{ type: "sample", status: status({ peers, drains }) }]));
    const text = plain(frame);
    expect(text).toContain("peers 3/3 up (1 draining)");
    expect(text).toContain("drain peer-0  120 chunks left  80 moved off  blocked: 12 chunks of 3 balls kept at rf up to 3: only 2 other peers take data");
    const done = plain(await frameOf(stateAt({ columns: 200, rows: 40 }, [{ type: "sample", status: status({ peers, drains: [{ peerId: "peer-0", remainingChunks: 0, movedChunks: 200, blocked: [] }] }) }])));
    expect(done).toContain("drain peer-0  0 chunks left  200 moved off  drained");
  });

  test("the heal bar: healed against healed + queued, with its rate", async () => {
    const frame = await frameOf(stateAt({ columns: 120, rows: 40 }, [{ type: "sample", status: status() }]));
    const healLine = linesOf(frame).find((line) => line.trimStart().startsWith("heal "));
    // 30 healed of 30 + 10: three quarters of a 30-cell bar is 22½ cells.
    expect(healLine).toContain(`heal ${"█".repeat(22)}▌${"░".repeat(7)} 75%  30/40 chunks  8.0 MiB/s`);
    expect(linesOf(frame).join("\n")).toContain("under-replicated 10 chunks");
  });

  test("SPM unreachable: a red banner that says so and that it is retrying, over the last data", async () => {
    const state = stateAt({ columns: 120, rows: 40 }, [
      { type: "sample", status: status() },
      { type: "error", message: "spm 127.0.0.1:7200 refused the connection; is it running?" },
    ]);
    const frame = await frameOf(state);
    const text = linesOf(frame).join("\n");
    expect(text).toContain("SPM 127.0.0.1:7200 unreachable: refused the connection; is it running? — retrying every 1s");
    expect(frame).toContain(redBackground);
    expect(text).toContain("peer-2"); // the stale table stays
    const recovered = await frameOf(next(state, { type: "sample", status: status({ uptimeMs: 3_730_000 }) }, 2_010_000));
    expect(plain(recovered)).not.toContain("unreachable");
  });

  test("at 80×24 the essentials show and nothing spills past the last row", async () => {
    const frame = await frameOf(stateAt({ columns: 80, rows: 24 }, [{ type: "sample", status: status() }]));
    const lines = linesOf(frame);
    expect(lines.length).toBeLessThanOrEqual(24);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
    const text = lines.join("\n");
    expect(text).toContain("PEER");
    for (const id of ["peer-0", "peer-1", "peer-2"]) expect(text).toContain(id);
    expect(text).toContain("down");
    expect(text).toContain("Replication");
    expect(text).toContain("q quit");
  });

  test("at 80×24 with 40 peers the table scrolls to the selection and panels give way", async () => {
    const many = status({ peers: Array.from({ length: 40 }, (_, i) => peer(`peer-${String(i).padStart(2, "0")}`, i === 33 ? { state: "down" } : {})) });
    const state = stateAt({ columns: 80, rows: 24 }, [{ type: "sample", status: many }, { type: "move", delta: 33 }]);
    const frame = await frameOf(state);
    const lines = linesOf(frame);
    expect(lines.length).toBeLessThanOrEqual(24);
    expect(lines.some((line) => line.startsWith("› peer-33") && line.includes("down"))).toBe(true);
    expect(lines.join("\n")).toContain("q quit");
  });

  test("several SPMs: a line with each one's part, the leader green, a down one red; one SPM shows none", async () => {
    const spms = [
      { address: "127.0.0.1:7300", role: "standby" as const, term: 7 },
      { address: "127.0.0.1:7301", role: "leader" as const, term: 7 },
      { address: "127.0.0.1:7302", role: "down" as const, error: "refused" },
    ];
    const frame = await frameOf(stateAt({ columns: 120, rows: 40 }, [{ type: "sample", status: { ...status(), spms } }]));
    const row = frame.split("\n").find((line) => plain(line).startsWith("SPMs"));
    expect(row).toBeDefined();
    expect(plain(row ?? "")).toBe("SPMs  127.0.0.1:7300 standby (term 7)  127.0.0.1:7301 leader (term 7)  127.0.0.1:7302 down");
    expect(row).toMatch(new RegExp(`${escape(green)}(\\u001B\\[[0-9;]*m)*leader`));
    expect(row).toMatch(new RegExp(`${escape(red)}(\\u001B\\[[0-9;]*m)*down`));
    // Between elections nobody leads: the line says so.
    const electing = spms.map((spm) => (spm.role === "leader" ? { ...spm, role: "standby" as const } : spm));
    const noLeader = plain(await frameOf(stateAt({ columns: 160, rows: 40 }, [{ type: "sample", status: { ...status(), spms: electing } }])));
    expect(noLeader).toContain("no leader: an election is under way");
    const single = plain(await frameOf(stateAt({ columns: 120, rows: 40 }, [{ type: "sample", status: { ...status(), spms: [spms[1]!] } }])));
    expect(single).not.toContain("SPMs");
    const alone = plain(await frameOf(stateAt({ columns: 120, rows: 40 }, [{ type: "sample", status: status() }])));
    expect(alone).not.toContain("SPMs");
  });

  test("any terminal size, panel or banner: the frame fits the rows and columns", async () => {
    const base: Action[] = [{ type: "sample", status: status({ peers: Array.from({ length: 12 }, (_, i) => peer(`peer-${i}`)) }) }];
    const spms = ["leader", "standby", "down"].map((role, i) => ({ address: `127.0.0.1:${7300 + i}`, role: role as "leader" | "standby" | "down", term: 3 }));
    const variants: Array<[string, Action[]]> = [
      ["plain", base],
      ["several SPMs", [{ type: "sample", status: { ...status({ peers: Array.from({ length: 12 }, (_, i) => peer(`peer-${i}`)) }), spms } }]],
      ["banner", [...base, { type: "error", message: "spm 127.0.0.1:7200 did not answer vss.status within 2000 ms" }]],
      ["detail", [...base, { type: "open" }, { type: "peerHealthError", peerId: "peer-0", message: "refused" }]],
      ["no data", [{ type: "error", message: "refused" }]],
    ];
    for (const [columns, rows] of [[20, 4], [40, 10], [80, 24], [100, 30], [200, 60]] as const) {
      for (const [name, steps] of variants) {
        const lines = linesOf(await frameOf(stateAt({ columns, rows }, steps)));
        const where = `${name} at ${columns}×${rows}`;
        expect({ where, rows: lines.length <= rows }).toEqual({ where, rows: true });
        expect({ where, columns: lines.every((line) => line.length <= columns) }).toEqual({ where, columns: true });
        if (rows >= 10) expect({ where, table: lines.some((line) => line.includes("PEER")) }).toEqual({ where, table: true });
      }
    }
  });

  test("the detail pane: shards and recent errors; an unreachable peer says so", async () => {
    const health: PeerHealth = {
      id: "peer-0",
      version: "0.1.0",
      uptimeMs: 90_000,
      capacityBytes: 10 * 2 ** 30,
      usedBytes: 3 * 2 ** 30,
      freeBytes: 7 * 2 ** 30,
      liveBytes: 2 * 2 ** 30,
      chunks: 1234,
      shards: [
        { id: 1, state: "read_only", bytes: 2 ** 30, liveBytes: 512 * 2 ** 20 },
        { id: 2, state: "active", bytes: 2 * 2 ** 30, liveBytes: 1.5 * 2 ** 30 },
      ],
      puts: 10,
      gets: 20,
      errors: 1,
      recentErrors: [{ atMs: 1_000_000, op: "chunk.get", code: "corrupt", message: "checksum mismatch in b_3" }],
      // The reply arrives at 2_002_000 (the third step): the last full pass ended 5 minutes before.
      scrub: { state: "scanning", passes: 2, bytesScanned: 5 * 2 ** 30, chunksScanned: 4000, corruptFound: 0, passProgress: 0.42, lastPassMs: 2_002_000 - 300_000, ratePerSec: 8 * 2 ** 20 },
    };
    const open = stateAt({ columns: 80, rows: 24 }, [{ type: "sample", status: status() }, { type: "open" }, { type: "peerHealth", peerId: "peer-0", health }]);
    const text = linesOf(await frameOf(open)).join("\n");
    expect(text).toContain("Peer peer-0 at 127.0.0.1:7210");
    expect(text).toContain("Shards (2)");
    expect(text).toMatch(/1\s+read_only\s+1\.0 GiB\s+512 MiB/);
    expect(text).toMatch(/2\s+active\s+2\.0 GiB\s+1\.5 GiB/);
    expect(text).toContain("chunk.get corrupt: checksum mismatch in b_3");
    expect(text).toContain("peer-2"); // the table stays above the pane
    expect(text).toContain("scrub: pass 3, 42 %, 0 corrupt, last full pass 5m00s ago, 8.0 MiB/s");

    const unreachable = stateAt({ columns: 80, rows: 24 }, [
      { type: "sample", status: status() },
      { type: "move", delta: 1 },
      { type: "open" },
      { type: "peerHealthError", peerId: "peer-1", message: "peer 127.0.0.1:7211 refused the connection; is it running?" },
    ]);
    const down = linesOf(await frameOf(unreachable)).join(" ");
    expect(down.replace(/\s+/g, " ")).toContain("peer peer-1 at 127.0.0.1:7211 is unreachable: peer 127.0.0.1:7211 refused the connection; is it running? (the SPM says down");
  });
});

describe("the live app with a fake SPM", () => {
  test("polls, selects with keys, opens and closes the detail pane, shows loss and recovery, re-lays out on resize, quits on q", async () => {
    let current: VssStatus = status({ peers: [peer("peer-0"), peer("peer-1"), peer("peer-2")] });
    let failing: string | null = null;
    const source: StatusSource = {
      status: async () => {
        if (failing) throw new Error(failing);
        current = { ...current, uptimeMs: current.uptimeMs + 100 };
        return current;
      },
      peerHealth: async (peerId) => {
        if (peerId === "peer-1") throw new Error("peer 127.0.0.1:7211 refused the connection; is it running?");
        return { id: "x", version: "0.1.0", uptimeMs: 1, capacityBytes: 1, usedBytes: 0, freeBytes: 1, liveBytes: 0, chunks: 0, shards: [{ id: 7, state: "active", bytes: 10, liveBytes: 10 }], puts: 0, gets: 0, errors: 0, recentErrors: [], scrub: { state: "off", passes: 0, bytesScanned: 0, chunksScanned: 0, corruptFound: 0, passProgress: 0, ratePerSec: 0 } };
      },
      close: () => {},
    };
    const stdout = new FakeStdout(120, 40);
    const stdin = fakeStdin();
    const instance = ink.render(<App source={source} spm={spm} intervalMs={100} />, {
      stdout: stdout as unknown as NodeJS.WriteStream,
      stdin: stdin as unknown as NodeJS.ReadStream,
      debug: true,
      patchConsole: false,
      exitOnCtrlC: false,
      onRender: ({ renderTime }) => renderTimes.push(renderTime),
    });
    const shows = async (what: string, check: (text: string) => boolean) => {
      const deadline = Date.now() + 3000;
      while (!check(plain(stdout.last))) {
        if (Date.now() > deadline) throw new Error(`the screen never showed ${what}; last frame:\n${plain(stdout.last)}`);
        await Bun.sleep(10);
      }
    };
    const type = (keys: string) => stdin.write(keys);

    try {
      await shows("three peers", (text) => text.includes("peers 3/3 up") && text.includes("peer-2"));
      type("\u001B[B"); // ↓
      await shows("peer-1 selected", (text) => /› peer-1/.test(text));
      type("\r");
      await shows("peer-1 unreachable", (text) => text.replace(/\s+/g, " ").includes("peer peer-1 at 127.0.0.1:7211 is unreachable"));
      type("\u001B[A"); // ↑: the pane follows the selection
      await shows("peer-0's shards", (text) => text.includes("Peer peer-0 at 127.0.0.1:7210") && text.includes("Shards (1)"));
      type("\u001B"); // Esc
      await shows("the panels again", (text) => text.includes("Replication") && !text.includes("Shards"));

      current = { ...current, peers: [peer("peer-0"), peer("peer-1", { state: "down", lastHeartbeatAgeMs: 4000 }), peer("peer-2")] };
      await shows("peer-1 down", (text) => /peer-1\s+127\.0\.0\.1:7211\s+down/.test(text) && text.includes("peers 2/3 up"));

      failing = "spm 127.0.0.1:7200 refused the connection; is it running?";
      await shows("the banner", (text) => text.includes("SPM 127.0.0.1:7200 unreachable: refused the connection; is it running? — retrying"));
      failing = null;
      await shows("recovery", (text) => !text.includes("unreachable") && text.includes("peer-2"));

      stdout.resize(60, 20);
      await shows("the narrow layout", (text) => text.split("\n").length <= 20 && text.includes("PEER") && !text.includes("ADDRESS") && text.includes("peer-2"));

      type("q");
      await instance.waitUntilExit();
    } finally {
      instance.unmount(); // a failed check must not leave the app polling
    }
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
