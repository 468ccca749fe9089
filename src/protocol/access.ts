// Who may call each operation: the one table the server checks every request against, so no
// handler can forget. A caller is a node, known by its certificate's role (mutual TLS), or a
// client, known by the access key it proved on connecting ("key"). A key then needs a grant:
// an action on the bucket the arguments name, or `admin` for the VSS's own operations.
//
// Without TLS (`--insecure`) nothing here is checked: every caller may call everything, as
// before keys existed; docs/security.md says what that leaves open.
import type { Action } from "../lib/grants.ts";
import type { NodeRole } from "../lib/node-identity.ts";
import type { OpTable, ParsedArgsOf } from "./envelope.ts";
import { peerOps } from "./peer.ts";
import { routerOps } from "./router.ts";
import { spmOps } from "./spm.ts";

export type Caller = NodeRole | "key";

export type KeyNeed<Args> =
  /** The action on the bucket the arguments name. */
  | { action: Action; bucket: (args: Args) => string }
  /** The action on at least one bucket; the handler shows only the buckets granted (context.principal). */
  | { action: Action; someBucket: true }
  /** An admin key (keys, drain, undrain, remove, status of peers). */
  | "admin"
  /** Any valid key (e.g. a router's health). */
  | "any";

export interface OpAccess<Args> {
  callers: readonly Caller[];
  /** What a key must be granted to call it (when "key" is among the callers). */
  key?: KeyNeed<Args>;
  /**
   * The node id the arguments claim for the caller itself (a peer's heartbeat names the peer):
   * it must be the id its certificate names, so no node can speak for another.
   */
  self?: (args: Args) => string;
}

export type AccessTable<T extends OpTable> = { [K in keyof T]: OpAccess<ParsedArgsOf<T, K>> };

/** The action on the bucket the arguments name. */
const on =
  (action: Action) =>
  <A extends { bucket: string }>(): KeyNeed<A> => ({ action, bucket: (args) => args.bucket });
const write = on("write");
const read = on("read");
const list = on("list");
const remove = on("delete");

/** Clients call routers; nothing else does. */
export const routerAccess: AccessTable<typeof routerOps> = {
  "ball.begin": { callers: ["key"], key: write() },
  "ball.abandon": { callers: ["key"], key: write() },
  "ball.putChunk": { callers: ["key"], key: write() },
  "ball.stageChunks": { callers: ["key"], key: write() },
  "ball.commit": { callers: ["key"], key: write() },
  "ball.put": { callers: ["key"], key: write() },
  "ball.stat": { callers: ["key"], key: read() },
  "ball.chunks": { callers: ["key"], key: read() },
  "ball.getChunk": { callers: ["key"], key: read() },
  "ball.get": { callers: ["key"], key: read() },
  "ball.delete": { callers: ["key"], key: remove() },
  "ball.list": { callers: ["key"], key: list() },
  "ball.count": { callers: ["key"], key: list() },
  "bucket.list": { callers: ["key"], key: { action: "list", someBucket: true } },
  "bucket.create": { callers: ["key"], key: write() },
  "bucket.delete": { callers: ["key"], key: remove() },
  "ball.deletePrefix": { callers: ["key"], key: remove() },
  "bucket.getSetting": { callers: ["key"], key: read() },
  "bucket.setSetting": { callers: ["key"], key: write() },
  "ball.setAcl": { callers: ["key"], key: write() },
  "router.health": { callers: ["key", "spm"], key: "any" },
};

/**
 * Peers are called by nodes only: routers move chunks, the SPM orders copies and deletes, peers
 * pull from peers. The SPM may call every peer op: it can already order any chunk deleted or
 * copied from anywhere, so reading or writing one itself gives it nothing more.
 */
export const peerAccess: AccessTable<typeof peerOps> = {
  "chunk.put": { callers: ["router", "spm"] },
  "chunk.putMany": { callers: ["router", "spm"] },
  "chunk.get": { callers: ["router", "peer", "spm"] },
  "chunk.getMany": { callers: ["router", "peer", "spm"] },
  "chunk.delete": { callers: ["spm"] },
  "chunk.stat": { callers: ["spm", "router"] },
  "chunk.statMany": { callers: ["spm"] },
  "chunk.list": { callers: ["spm"] },
  "chunk.pull": { callers: ["spm"] },
  "peer.health": { callers: ["spm", "router"] },
  "manifest.putMany": { callers: ["spm"] },
  "manifest.list": { callers: ["spm"] },
  "manifest.ofObject": { callers: ["peer", "spm"] },
};

const routers = ["router"] as const;

/** The SPM: nodes report and routers ask; people (admin keys) run the VSS. */
export const spmAccess: AccessTable<typeof spmOps> = {
  "peer.heartbeat": { callers: ["peer"], self: (args) => args.id },
  "router.heartbeat": { callers: ["router"] },
  "ball.begin": { callers: routers },
  "ball.abandon": { callers: routers },
  "ball.reserve": { callers: routers },
  "ball.reserveMany": { callers: routers },
  "ball.place": { callers: routers },
  "ball.touch": { callers: routers },
  "ball.commit": { callers: routers },
  "ball.commitMany": { callers: routers },
  "ball.get": { callers: routers },
  "ball.chunks": { callers: routers },
  "ball.stageChunks": { callers: routers },
  "ball.getMany": { callers: routers },
  "chunk.locate": { callers: routers },
  "ball.delete": { callers: routers },
  "ball.list": { callers: routers },
  "bucket.list": { callers: routers },
  "bucket.create": { callers: routers },
  "bucket.delete": { callers: routers },
  "ball.count": { callers: routers },
  "ball.deletePrefix": { callers: routers },
  "replica.corrupt": { callers: ["router", "peer"] },
  "peers.list": { callers: ["router", "key"], key: "admin" },
  "peer.drain": { callers: ["key"], key: "admin" },
  "peer.undrain": { callers: ["key"], key: "admin" },
  "peer.remove": { callers: ["key"], key: "admin" },
  "vss.status": { callers: ["key"], key: "admin" },
  "peer.healthOf": { callers: ["key"], key: "admin" },
  "key.create": { callers: ["key"], key: "admin" },
  "key.list": { callers: ["key"], key: "admin" },
  "key.revoke": { callers: ["key"], key: "admin" },
  /** A key with its secret: for routers only, over their mTLS link (src/roles/router/keys.ts). */
  "key.lookup": { callers: ["router"] },
  "audit.list": { callers: ["key"], key: "admin" },
  "bucket.getSetting": { callers: routers },
  "bucket.setSetting": { callers: routers },
  "ball.setAcl": { callers: routers },
};
