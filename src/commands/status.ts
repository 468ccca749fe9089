// `mictlanx status` and `mictlanx peer drain`: ask the SPMs directly (`--spm a,b,c`, several
// sharing one catalog): status asks each, the admin commands whichever answers (a standby
// forwards writes to the leader).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { RpcPool } from "../net/pool.ts";
import { SpmSet, type ServiceCaller } from "../net/spm-set.ts";
import { statusOfSpms, type SpmEntry } from "../net/spm-status.ts";
import { limits } from "../lib/limits.ts";
import type { SpmOps, VssStatus } from "../protocol/spm.ts";
import { defaults, nonEmpty, resolveSpm } from "../lib/defaults.ts";
import { clientSecurity, findCredentials, type CredentialFlags } from "../client/credentials.ts";
import { formatBytes } from "../lib/size.ts";
import { printable, terminalJson } from "../lib/names.ts";

/** Where the SPMs are (--spm, MICTLANX_SPM, the `up` default) and the key to prove there. */
export type SpmClientFlags = { spm?: string | undefined } & CredentialFlags;

/**
 * The SPMs to ask: --spm, else MICTLANX_SPM, else those of a VSS `up --ha` started in
 * ./.mictlanx (its vss.json lists them), else the SPM `up` starts by default.
 */
export async function spmAddressesFor(flag: string | undefined, env = process.env, dir = defaults.upDataDir): Promise<string[]> {
  if (nonEmpty(flag) === undefined && nonEmpty(env.MICTLANX_SPM) === undefined && existsSync(join(dir, "vss.json"))) {
    const { vssFileIn } = await import("../local/vss.ts");
    const listed = vssFileIn(dir)?.spms?.map((spm) => spm.address) ?? [];
    if (listed.length > 1) return listed.slice(0, limits.spmAddressesMax);
  }
  return resolveSpm(flag, env);
}

/** A pool to the SPMs of these flags, closed after `work`. */
async function withSpmPool<T>(flags: SpmClientFlags, work: (pool: RpcPool, addresses: string[]) => Promise<T>): Promise<T> {
  const addresses = await spmAddressesFor(flags.spm);
  const security = clientSecurity(findCredentials(flags));
  const pool = new RpcPool({ role: "spm", expectRole: "spm", connectAttempts: 2, ...(security ? { security } : {}) });
  try {
    return await work(pool, addresses);
  } finally {
    pool.close();
  }
}

/** One call (or a few) to the SPMs of `--spm` / MICTLANX_SPM: whichever answers. */
export function withSpm<T>(flags: SpmClientFlags, work: (spm: ServiceCaller<SpmOps>) => Promise<T>): Promise<T> {
  return withSpmPool(flags, (pool, addresses) => work(new SpmSet(pool, addresses)));
}

export async function statusCommand(flags: SpmClientFlags & { json?: boolean }): Promise<void> {
  const { status, spms } = await withSpmPool(flags, (pool, addresses) => statusOfSpms(pool, addresses));
  process.stdout.write(flags.json ? `${terminalJson({ ...status, spms })}\n` : statusText(status, spms));
}

export async function drainCommand(id: string, flags: SpmClientFlags & { json?: boolean }): Promise<void> {
  const result = await withSpm(flags, (spm) => spm.call("peer.drain", { id }));
  process.stdout.write(
    flags.json ? `${terminalJson(result)}\n` : `peer ${printable(result.id)} is draining; its ${result.chunks} chunks are moving to other peers (watch with: mictlanx status)\n`,
  );
}

export async function undrainCommand(id: string, flags: SpmClientFlags & { json?: boolean }): Promise<void> {
  const result = await withSpm(flags, (spm) => spm.call("peer.undrain", { id }));
  process.stdout.write(flags.json ? `${terminalJson(result)}\n` : `peer ${printable(result.id)} is no longer draining; it takes new data again\n`);
}

export async function removeCommand(id: string, flags: SpmClientFlags & { json?: boolean }): Promise<void> {
  const result = await withSpm(flags, (spm) => spm.call("peer.remove", { id }));
  const healed = result.replicas > 0 ? `; the ${result.replicas} replicas it held are being copied to other peers (watch with: mictlanx status)` : "";
  process.stdout.write(flags.json ? `${terminalJson(result)}\n` : `peer ${printable(result.id)} is removed${healed}\n`);
}

/**
 * "peers 3/3 up", and how many of those are draining: they serve reads but take no new data,
 * so a put needs rf peers among the rest ("3/3 up" with one draining cannot take rf 3).
 */
export function peersSummary(peers: VssStatus["peers"]): string {
  const up = peers.filter((peer) => peer.state === "up").length;
  const draining = peers.filter((peer) => peer.draining).length;
  const takingData = peers.filter((peer) => peer.state === "up" && !peer.draining).length;
  return `peers ${up}/${peers.length} up${draining > 0 ? ` (${draining} draining: ${takingData} take new data)` : ""}`;
}

/** A drain's progress, then what keeps chunks on the peer, if anything does. */
export function drainLines(drain: VssStatus["drains"][number]): string[] {
  const head = `drain        ${printable(drain.peerId)}: ${drain.remainingChunks} chunks left, ${drain.movedChunks} moved off${drain.remainingChunks === 0 ? " (drained: mictlanx peer remove " + printable(drain.peerId) + ")" : ""}`;
  return [head, ...drain.blocked.map((entry) => `             blocked: ${printable(entry.message)}`)];
}

/** "spms  a leader (term 7)  b standby  c DOWN": who leads, and which SPMs cannot be reached. */
export function spmsLine(spms: SpmEntry[]): string {
  const parts = spms.map((spm) => `${printable(spm.address)} ${spm.role === "down" ? "DOWN" : spm.role}${spm.term === undefined ? "" : ` (term ${spm.term})`}`);
  const leaders = spms.filter((spm) => spm.role === "leader").length;
  const note = leaders === 0 ? "  (no leader: an election is under way, writes wait for it)" : "";
  return `spms         ${parts.join("  ")}${note}`;
}

function age(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Peer ids, addresses and messages (which quote keys and buckets) go through `printable`: never raw to a terminal. */
export function statusText(status: VssStatus, spms: SpmEntry[] = []): string {
  const healing = status.healing;
  const reconcile = status.reconcile;
  const lines = [
    `VSS ${printable(status.spm)}  up ${age(status.uptimeMs)}  ${peersSummary(status.peers)}  balls ${status.balls}  stored ${formatBytes(status.bytes)}`,
    ...(spms.length > 1 ? [spmsLine(spms)] : []),
    ...(status.catalog.writable ? [] : [`catalog      NOT TAKING WRITES: ${printable(status.catalog.problem ?? "")}`]),
    ...(status.insecure ? ["security     INSECURE: no TLS and no access keys (--insecure); anyone who can reach the ports can read, write and delete"] : []),
    ...status.certificateWarnings.map((warning) => `certificate  ${printable(warning)}`),
    "",
    "PEER        ADDRESS              STATE    USED / CAPACITY          CHUNKS   HEARTBEAT",
    ...status.peers.map(
      (peer) =>
        `${printable(peer.id).padEnd(11)} ${printable(peer.address).padEnd(20)} ${(peer.state + (peer.draining ? "*" : "")).padEnd(8)} ${`${formatBytes(peer.usedBytes)} / ${formatBytes(peer.capacityBytes)}`.padEnd(24)} ${String(peer.chunks).padEnd(8)} ${age(peer.lastHeartbeatAgeMs)} ago`,
    ),
    ...(status.peers.some((peer) => peer.draining) ? ["(* draining)"] : []),
    "",
    "ROUTER               STATE    REQUESTS   REQ/S   HEARTBEAT",
    ...status.routers.map(
      (router) => `${printable(router.address).padEnd(20)} ${router.state.padEnd(8)} ${String(router.requests).padEnd(10)} ${router.requestsPerSec.toFixed(0).padEnd(7)} ${age(router.lastHeartbeatAgeMs)} ago`,
    ),
    "",
    `replication  under-replicated chunks ${status.underReplicated}  garbage ${status.garbage}`,
    `uploads      ${status.pendingUploads} pending${status.pendingUploads > 0 ? `, ${formatBytes(status.pendingUploadBytes)} placed` : ""}`,
    `healing      ${healing.active ? "active" : "idle"}  healed ${healing.healedChunks} chunks (${formatBytes(healing.healedBytes)})  moved ${healing.movedChunks}  trimmed ${healing.trimmedReplicas}  repaired ${healing.repairedCorrupt}  ${formatBytes(healing.bytesPerSec)}/s`,
    ...(healing.lastError ? [`             last error: ${printable(healing.lastError)}`] : []),
    ...status.drains.flatMap(drainLines),
    `reconcile    ${reconcile.checking > 0 ? "checking" : "idle"}  ${reconcile.passes} checks  missing replicas ${reconcile.missingReplicas}  orphans collected ${reconcile.orphansCollected}  lost chunks ${reconcile.lostChunks}`,
    ...reconcile.blocked.map((entry) => `             not collecting on ${printable(entry.peerId)}: ${printable(entry.message)}`),
    ...(status.events.length > 0 ? ["", "recent events", ...status.events.slice(-8).map((event) => `  ${new Date(event.atMs).toISOString().slice(11, 19)}  ${printable(event.message)}`)] : []),
  ];
  return `${lines.join("\n")}\n`;
}
