// The soak's own numbers, each with why. These are the test's choices, not bounds of mictlanx
// (those live in src/lib/limits.ts); the soak reads the ones it depends on from there.
import { limits, units } from "../../src/lib/limits.ts";

export const soakPlan = {
  peers: 4,
  routers: 2,
  /** rf 2 on 4 peers: one peer may be unavailable or wiped at a time and nothing is lost. */
  rf: 2,
  /** Short liveness so a SIGSTOP outlasts the grace period in seconds, not minutes. */
  suspectAfter: "1s",
  downAfter: "4s",
  downAfterMs: 4_000,

  // --- load ---
  workers: 3,
  /** Operations each worker keeps in flight (each lane has its own client, see worker.ts). */
  lanesPerWorker: 2,
  /** Keys per worker: few, so keys are overwritten, deleted and put again many times. */
  keysPerWorker: 24,
  /** The first groupKeysPerWorker keys belong to ball groups, groupsPerWorker of them. */
  groupKeysPerWorker: 9,
  groupsPerWorker: 3,
  /**
   * Keys each worker writes once, early, and then only reads: the churning keys are rewritten
   * within seconds, which would erase the evidence of a fault; these balls live through every
   * fault of the schedule, so a replica lost to a wipe or a twin shows in the audit.
   */
  archiveKeysPerWorker: 16,
  archiveSize: { min: 256 * units.KiB, max: 2 * units.MiB },
  archiveChunkSizes: [64 * units.KiB, 256 * units.KiB],
  /** Share of gets that read an archived key. */
  archiveReadShare: 0.3,
  /** Payload sizes: share of ops and [min, max] bytes; 0 B is in the first class. */
  sizeClasses: [
    { share: 0.3, min: 0, max: 4 * units.KiB },
    { share: 0.4, min: 4 * units.KiB, max: 256 * units.KiB },
    { share: 0.2, min: 256 * units.KiB, max: 1 * units.MiB },
    { share: 0.1, min: 1 * units.MiB, max: 4 * units.MiB },
  ],
  /** Chunk sizes a put picks from: the small one makes balls of many chunks. */
  chunkSizes: [64 * units.KiB, 256 * units.KiB, 1 * units.MiB],
  /** Op mix (cumulative thresholds are built from these shares in worker.ts). */
  opShares: { get: 0.4, put: 0.28, delete: 0.12, groupGet: 0.13, groupDelete: 0.07 },
  /**
   * After a write fails (its outcome unknown: it may still commit), the key is not written again
   * for this long: a request the client gave up on can reach the SPM up to a request timeout
   * later, and a later write must not be judged against a stray earlier one landing after it.
   */
  unknownOutcomeSettleMs: limits.requestTimeoutMsDefault + 5_000,
  /** How often a worker reports its counters. */
  progressIntervalMs: 10_000,

  // --- faults ---
  /** Quiet time between two faults, drawn from [min, max]. */
  faultGapMsMin: 2_000,
  faultGapMsMax: 8_000,
  /** A SIGSTOPped peer stays stopped this long after the SPM has marked it down (healing starts). */
  stoppedPastDownMs: 2_000,
  /** A twin runs this long before it is killed (when it was not refused at once). */
  twinLifeMs: 6_000,
  /** `up` must have restarted a killed role within this (its backoff starts at 250 ms). */
  restartWaitMs: 30_000,
  /** A restarted or resumed role must be back (answering, peers up) within this. */
  backWaitMs: 30_000,
  /** rf must be restored within this after a peer fault before the next one is allowed. */
  healWaitMs: 180_000,

  // --- the end ---
  /** Workers finish their last ops within this after their deadline (a request times out in 30 s). */
  workerFinishMs: 3 * limits.requestTimeoutMsDefault,
  /** After the schedule: all peers up and nothing under-replicated within this. */
  finalHealWaitMs: 240_000,
  /** Extra replicas of live balls must have been trimmed and collected within this. */
  inventorySettleMs: 90_000,
  /** Attempts of each final read-back (with a pause between) before the key counts as failed. */
  finalReadAttempts: 4,
  /** Time allowed beyond --minutes for starting, finishing, healing and auditing, end to end. */
  overheadMs: 15 * 60_000,
} as const;

export type FaultKind = "kill-spm" | "kill-router" | "kill-peer" | "wipe-peer" | "twin-peer" | "stop-peer";
export const faultKinds: readonly FaultKind[] = ["kill-spm", "kill-router", "kill-peer", "wipe-peer", "twin-peer", "stop-peer"];

export type OpKind = "put" | "overwrite" | "get" | "delete" | "group-put" | "group-get" | "group-delete";
export const opKinds: readonly OpKind[] = ["put", "overwrite", "get", "delete", "group-put", "group-get", "group-delete"];

export interface FaultStep {
  kind: FaultKind;
  /** Router or peer index (0 for the SPM). */
  target: number;
  /** Quiet time before this fault. */
  gapMs: number;
}

/**
 * The fault schedule: rounds of all six kinds, each round in a seeded order, targets and gaps
 * seeded too. Every kind comes once in the first round, so a short run still injects them all.
 */
export function faultSchedule(random: () => number, rounds: number, kinds: readonly FaultKind[] = faultKinds): FaultStep[] {
  const steps: FaultStep[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const order = [...kinds];
    for (let i = order.length - 1; i > 0; i -= 1) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j] as FaultKind, order[i] as FaultKind];
    }
    for (const kind of order) {
      const targets = kind === "kill-spm" ? 1 : kind === "kill-router" ? soakPlan.routers : soakPlan.peers;
      const gapMs = soakPlan.faultGapMsMin + Math.floor(random() * (soakPlan.faultGapMsMax - soakPlan.faultGapMsMin));
      steps.push({ kind, target: Math.floor(random() * targets), gapMs });
    }
  }
  return steps;
}

/** A seed for a part of the soak (a worker, a lane) derived from the run's seed. */
export function derivedSeed(seed: number, ...parts: number[]): number {
  let hash = seed >>> 0;
  for (const part of parts) hash = Math.imul(hash ^ (part + 0x9e3779b9), 0x85ebca6b) >>> 0;
  return (hash ^ (hash >>> 13)) >>> 0;
}
