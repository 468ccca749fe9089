// Where the dashboard's data comes from: `vss.status` from the SPM and `peer.health` from a peer,
// over the usual RPC pool, and a loop that asks again every interval without overlapping.
import { RpcPool } from "../net/pool.ts";
import { SpmSet } from "../net/spm-set.ts";
import { statusOfSpms } from "../net/spm-status.ts";
import type { PeerHealth } from "../protocol/peer.ts";
import type { ClientSecurity } from "../net/connection.ts";
import type { Sample } from "./model.ts";

export interface StatusSource {
  /** The leader's status (else any SPM's), and with several SPMs what part each plays. */
  status(): Promise<Sample>;
  /** A peer's health, asked of it by the SPM (peers take no clients). */
  peerHealth(peerId: string): Promise<PeerHealth>;
  close(): void;
}

export interface SourceTimings {
  /** How long to wait for a TCP connection (one attempt: the loop is the retry). */
  connectTimeoutMs: number;
  /** How long to wait for an answer. */
  requestTimeoutMs: number;
}

export function rpcSource(spms: readonly string[], timings: SourceTimings, security?: ClientSecurity): StatusSource {
  const options = { connectAttempts: 1, connectionsPerAddress: 1, connectTimeoutMs: timings.connectTimeoutMs, ...(security ? { security } : {}) };
  const spmPool = new RpcPool({ role: "spm", expectRole: "spm", ...options });
  const client = new SpmSet(spmPool, spms);
  const call = { timeoutMs: timings.requestTimeoutMs };
  return {
    // One SPM: its status as it is. Several: each asked, for the SPMs line.
    status: async () => {
      if (client.addresses.length === 1) return client.call("vss.status", {}, call);
      const { status, spms: entries } = await statusOfSpms(spmPool, client.addresses, call);
      return { ...status, spms: entries };
    },
    peerHealth: (peerId) => client.call("peer.healthOf", { id: peerId }, call),
    close: () => spmPool.close(),
  };
}

export interface Loop {
  stop(): void;
}

/**
 * Run `task` now and then every `intervalMs`, measured start to start; a slow task delays the
 * next run instead of overlapping it. `task` must not throw (report errors through its result).
 */
export function every(intervalMs: number, task: () => Promise<void>): Loop {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = async () => {
    const startedMs = Date.now();
    await task();
    if (stopped) return;
    timer = setTimeout(run, Math.max(0, intervalMs - (Date.now() - startedMs)));
  };
  void run();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

export type PollResult = { type: "sample"; status: Sample } | { type: "error"; message: string };

/** Ask the SPM for its status every interval; each answer or failure goes to `report`. */
export function pollStatus(source: StatusSource, intervalMs: number, report: (result: PollResult) => void): Loop {
  let stopped = false;
  const loop = every(intervalMs, async () => {
    let result: PollResult;
    try {
      result = { type: "sample", status: await source.status() };
    } catch (error) {
      result = { type: "error", message: errorMessage(error) };
    }
    if (!stopped) report(result);
  });
  return {
    stop: () => {
      stopped = true;
      loop.stop();
    },
  };
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
