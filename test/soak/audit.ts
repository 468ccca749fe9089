// After the schedule: rf restored for every ball, the catalog and the peers' inventories agree,
// and every key reads back in a state its ledger allows. Each check says exactly which ball,
// chunk, peer and write it is about.
import { Client } from "../../src/client/client.ts";
import { MictlanxError } from "../../src/lib/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import type { BallLocated } from "../../src/protocol/ball.ts";
import type { VssStatus } from "../../src/protocol/spm.ts";
import { stateOf } from "./content.ts";
import { absent, describeAcceptable, describeState, matchState, type Attempt, type BallState } from "./ledger.ts";
import { soakPlan } from "./plan.ts";
import type { LedgerFile } from "./protocol.ts";
import { SystemFailure, type UpProcess } from "./up.ts";
import { findCredentials } from "../../src/client/credentials.ts";

export interface AuditResult {
  keysChecked: number;
  ballsChecked: number;
  chunksChecked: number;
  replicasChecked: number;
  /** Keys that must hold data and did not read back (not found, or unreadable). */
  lost: string[];
  /** Reads that returned a state the ledger does not allow (wrong bytes, a deleted ball back). */
  wrong: string[];
  /** Keys that may be absent but could not be read at all. */
  unreadable: string[];
  /** rf, catalog and inventory disagreements, and a VSS that did not heal, by kind. */
  inventory: Problems;
  /** Chunks on peers that belong to no live ball (garbage not yet collected, or orphans). */
  orphanChunks: number;
  /** What the SPM counted as garbage pending at the last pass, beside orphanChunks. */
  garbagePending: number;
}

/** Problems grouped by kind, so 300 missing replicas on one peer read as one finding with examples. */
export class Problems {
  private readonly byKind = new Map<string, string[]>();

  add(kind: string, message: string): void {
    const list = this.byKind.get(kind) ?? [];
    list.push(message);
    this.byKind.set(kind, list);
  }

  get count(): number {
    let total = 0;
    for (const list of this.byKind.values()) total += list.length;
    return total;
  }

  lines(examplesPerKind: number): string[] {
    return [...this.byKind].flatMap(([kind, list]) => [
      `${kind}: ${list.length}`,
      ...list.slice(0, examplesPerKind).map((message) => `    e.g. ${message}`),
    ]);
  }
}

/** Calls with at most `concurrency` running. */
async function forEachBounded<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
}

const auditConcurrency = 8;

export async function audit(up: UpProcess, ledgers: LedgerFile[], bucket: string, say: (line: string) => void): Promise<AuditResult> {
  const result: AuditResult = { keysChecked: 0, ballsChecked: 0, chunksChecked: 0, replicasChecked: 0, lost: [], wrong: [], unreadable: [], inventory: new Problems(), orphanChunks: 0, garbagePending: 0 };
  const client = new Client({ ...findCredentials(), routers: up.read().routers, cacheBytes: 0 });
  try {
    try {
      await up.waitHealed("the end of the schedule", soakPlan.finalHealWaitMs);
      say("audit: every peer up, nothing under-replicated");
    } catch (error) {
      if (!(error instanceof SystemFailure)) throw error;
      result.inventory.add("the VSS did not heal", error.message);
    }
    // Extra replicas (a resumed peer's) are trimmed and collected a little after rf is back.
    const deadline = performance.now() + soakPlan.inventorySettleMs;
    let pass: InventoryPass;
    for (;;) {
      pass = await inventoryPass(up, client, bucket);
      if (pass.problems.count === 0 || performance.now() > deadline) break;
      await Bun.sleep(2_000);
    }
    result.inventory = pass.problems;
    result.ballsChecked = pass.balls.size;
    result.chunksChecked = pass.chunks;
    result.replicasChecked = pass.replicas;
    result.orphanChunks = pass.orphans;
    result.garbagePending = pass.garbage;
    say(`audit: ${pass.balls.size} live balls, ${pass.chunks} chunks, ${pass.replicas} replicas checked on the peers; ${pass.problems.count} problems; ${pass.orphans} chunks of no live ball on the peers (the SPM counts ${pass.garbage} garbage pending)`);
    await readBack(client, bucket, ledgers, pass.balls, result);
  } finally {
    client.close();
  }
  return result;
}

interface InventoryPass {
  balls: Map<string, BallLocated>;
  chunks: number;
  replicas: number;
  orphans: number;
  garbage: number;
  problems: Problems;
}

async function inventoryPass(up: UpProcess, client: Client, bucket: string): Promise<InventoryPass> {
  const status = await up.status();
  const pass: InventoryPass = { balls: new Map(), chunks: 0, replicas: 0, orphans: 0, garbage: status.garbage, problems: new Problems() };
  const keys: string[] = [];
  for await (const page of client.list(bucket)) for (const meta of page) keys.push(meta.key);
  await forEachBounded(keys, auditConcurrency, async (key) => {
    try {
      const located = await client.stat(bucket, key);
      pass.balls.set(located.objectId, located);
    } catch (error) {
      pass.problems.add("listed balls whose stat fails", `${bucket}/${key}: listed, but stat fails: ${(error as Error).message}`);
    }
  });
  const checks: Array<() => Promise<void>> = [];
  for (const ball of pass.balls.values()) checks.push(...checkBall(up, status, bucket, ball, pass));
  await forEachBounded(checks, auditConcurrency, (check) => check());
  await checkInventories(up, status, bucket, pass);
  return pass;
}

/** rf distinct up peers per chunk, and each listed replica really held with the right checksum. */
function checkBall(up: UpProcess, status: VssStatus, bucket: string, ball: BallLocated, pass: InventoryPass): Array<() => Promise<void>> {
  const name = `${bucket}/${ball.key} v${ball.version} (object ${ball.objectId})`;
  if (ball.chunks.length !== ball.numChunks || ball.chunks.some((chunk, i) => chunk.index !== i)) {
    pass.problems.add("balls whose chunk list is not 0..n-1", `${name}: the catalog lists chunks [${ball.chunks.map((chunk) => chunk.index).join(",")}] for ${ball.numChunks} chunks`);
  }
  const checks: Array<() => Promise<void>> = [];
  for (const chunk of ball.chunks) {
    pass.chunks += 1;
    const distinct = new Set(chunk.peers);
    const notUp = chunk.peers.filter((id) => status.peers.find((peer) => peer.id === id)?.state !== "up");
    if (distinct.size < ball.rf || notUp.length > 0) {
      pass.problems.add("chunks not on rf distinct up peers", `${name} chunk ${chunk.index}: on [${chunk.peers.join(", ")}]: ${distinct.size} distinct peers for rf ${ball.rf}${notUp.length ? `, not up: ${notUp.join(", ")}` : ""}`);
    }
    for (const id of distinct) {
      checks.push(async () => {
        const peer = status.peers.find((candidate) => candidate.id === id);
        if (!peer) {
          pass.problems.add("replicas on peers the SPM does not know", `${name} chunk ${chunk.index}: listed on ${id}, which the SPM does not know`);
          return;
        }
        pass.replicas += 1;
        try {
          const held = await up.peer(peer.address).call("chunk.stat", { bucket, ball: ball.objectId, index: chunk.index });
          if (held.size !== chunk.size || held.checksum !== chunk.checksum) {
            pass.problems.add(`replicas ${id} holds with other bytes than the catalog says`, `${name} chunk ${chunk.index}: ${id} holds ${held.size} B xxh3 ${held.checksum}, the catalog says ${chunk.size} B xxh3 ${chunk.checksum}`);
          }
        } catch (error) {
          const code = error instanceof MictlanxError ? error.code : "an error";
          pass.problems.add(`replicas the catalog lists on ${id} that it does not hold`, `${name} chunk ${chunk.index}: the catalog lists ${id} (${peer.address}), which answers ${code}: ${(error as Error).message}`);
        }
      });
    }
  }
  return checks;
}

/** No peer holds a chunk of a live ball that the catalog does not list on it. */
async function checkInventories(up: UpProcess, status: VssStatus, bucket: string, pass: InventoryPass): Promise<void> {
  for (const peer of status.peers) {
    let after: string | undefined;
    do {
      const page = await up.peer(peer.address).call("chunk.list", { bucket, limit: limits.listPageMax, ...(after === undefined ? {} : { after }) });
      for (const held of page.chunks) {
        const ball = pass.balls.get(held.ball);
        if (!ball) {
          pass.orphans += 1;
          continue;
        }
        const record = ball.chunks[held.index];
        if (!record || !record.peers.includes(peer.id)) {
          pass.problems.add(
            `chunks of live balls on ${peer.id} that the catalog does not list there`,
            `${peer.id} holds chunk ${held.index} of live ${bucket}/${ball.key} v${ball.version} (object ${ball.objectId}) that the catalog does not list there ` +
              `(catalog: [${record?.peers.join(", ") ?? "no such chunk"}]; garbage pending ${status.garbage})`,
          );
        }
      }
      after = page.next;
    } while (after !== undefined);
  }
}

/** Every key of every ledger, read once more: it must be in a state its ledger allows. */
async function readBack(client: Client, bucket: string, ledgers: LedgerFile[], live: Map<string, BallLocated>, result: AuditResult): Promise<void> {
  const known = new Set<string>();
  const entries = ledgers.flatMap((ledger) => ledger.keys.map((entry) => ({ ...entry, writes: ledger.writes })));
  await forEachBounded(entries, auditConcurrency, async (entry) => {
    known.add(entry.key);
    result.keysChecked += 1;
    const acceptable: Attempt[] = entry.acceptable;
    const mustExist = acceptable.every((attempt) => attempt.state.kind === "present");
    const read = await readFinal(client, bucket, entry.key);
    if ("error" in read) {
      (mustExist ? result.lost : result.unreadable).push(`${entry.key}: ${read.error} (${soakPlan.finalReadAttempts} attempts); it may only be: ${describeAcceptable(acceptable)}`);
      return;
    }
    if (matchState(read.state, acceptable)) return;
    if (read.state.kind === "absent" && mustExist) {
      result.lost.push(`${entry.key}: not found; it may only be: ${describeAcceptable(acceptable)}`);
      return;
    }
    const whose = read.state.kind === "present" ? (entry.writes[read.state.sha256] ?? "no write of this worker") : "";
    result.wrong.push(`${entry.key}: reads back ${describeState(read.state)}${whose ? ` (${whose})` : ""}; it may only be: ${describeAcceptable(acceptable)}`);
  });
  for (const ball of live.values()) {
    if (!known.has(ball.key)) result.wrong.push(`${bucket}/${ball.key}: a live ball that no worker wrote`);
  }
}

/** A read with nothing else running: not found counts as absent only when the catalog agrees. */
async function readFinal(client: Client, bucket: string, key: string): Promise<{ state: BallState } | { error: string }> {
  let lastError = "";
  for (let attempt = 1; attempt <= soakPlan.finalReadAttempts; attempt += 1) {
    try {
      return { state: stateOf(await client.get(bucket, key)) };
    } catch (error) {
      if (!isNotFound(error)) lastError = (error as Error).message;
      else {
        const stat = await client.stat(bucket, key).then(
          (located) => `v${located.version} (object ${located.objectId})`,
          (statError) => (isNotFound(statError) ? undefined : `stat failed: ${(statError as Error).message}`),
        );
        if (stat === undefined) return { state: absent };
        lastError = `not found (${(error as Error).message}), yet the catalog has ${stat}`;
      }
      await Bun.sleep(1_000 * attempt);
    }
  }
  return { error: lastError };
}

function isNotFound(error: unknown): boolean {
  return error instanceof MictlanxError && error.code === "not_found";
}
