// `mictlanx status` and `mictlanx peer drain`: ask the SPM directly.
import { RpcPool, ServiceClient } from "../net/pool.ts";
import { parseAddress } from "../net/address.ts";
import { spmOps, type VssStatus } from "../protocol/spm.ts";
import { resolveSpm } from "../lib/defaults.ts";
import { clientSecurity, findCredentials, type CredentialFlags } from "../client/credentials.ts";
import { formatBytes } from "../lib/size.ts";
import { printable, terminalJson } from "../lib/names.ts";

/** One call (or a few) to the SPM of `--spm` / MICTLANX_SPM, its pool closed after. */
/** Where the SPM is (--spm, MICTLANX_SPM, the `up` default) and the key to prove there. */
export type SpmClientFlags = { spm?: string | undefined } & CredentialFlags;

export async function withSpm<T>(flags: SpmClientFlags, work: (spm: ServiceClient<typeof spmOps>) => Promise<T>): Promise<T> {
  const security = clientSecurity(findCredentials(flags));
  const pool = new RpcPool({ role: "spm", expectRole: "spm", connectAttempts: 2, ...(security ? { security } : {}) });
  try {
    return await work(new ServiceClient(spmOps, pool, parseAddress(resolveSpm(flags.spm))));
  } finally {
    pool.close();
  }
}

export async function statusCommand(flags: SpmClientFlags & { json?: boolean }): Promise<void> {
  const status = await withSpm(flags, (spm) => spm.call("vss.status", {}));
  process.stdout.write(flags.json ? `${terminalJson(status)}\n` : statusText(status));
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

function age(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Peer ids, addresses and messages (which quote keys and buckets) go through `printable`: never raw to a terminal. */
export function statusText(status: VssStatus): string {
  const healing = status.healing;
  const reconcile = status.reconcile;
  const lines = [
    `VSS ${printable(status.spm)}  up ${age(status.uptimeMs)}  ${peersSummary(status.peers)}  balls ${status.balls}  stored ${formatBytes(status.bytes)}`,
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
