// Who a connection's caller is, and whether it may make one request: checked by the server
// before any handler runs, against the op's line in its access table (src/protocol/access.ts).
import { ForbiddenError } from "../lib/errors.ts";
import { grantsAllow, type Action, type Grant } from "../lib/grants.ts";
import type { NodeRole } from "../lib/node-identity.ts";
import type { OpAccess } from "../protocol/access.ts";

export type Principal =
  /** One of the VSS's nodes: by its certificate (verified), or by its hello without TLS (believed). */
  | { kind: "node"; role: NodeRole | string; id: string; verified: boolean }
  /** A client that proved an access key on connecting; `record` is its current grants (set per request). */
  | { kind: "key"; accessKey: string; record?: KeyRecord }
  /** A client that proved nothing (without TLS, every client). */
  | { kind: "anonymous" };

export interface KeyRecord {
  accessKey: string;
  secretKey: string;
  grants: Grant[];
  admin: boolean;
  revoked: boolean;
}

/** Where a server finds access keys: a router asks the SPM (and caches), the SPM its catalog. */
export interface KeyVerifier {
  /**
   * The key's record as of at most a few seconds ago (so a revocation takes effect within a
   * bound), undefined when the VSS does not know it; throws `unavailable` when it cannot tell.
   */
  lookup(accessKey: string): Promise<KeyRecord | undefined>;
}

const noKey = "no access key: set MICTLANX_ACCESS_KEY and MICTLANX_SECRET_KEY, pass --credentials FILE, or run from the directory of `mictlanx up`";

/**
 * The principal for this request (a key's with its current record), or a ForbiddenError saying
 * what is missing. A node's request (the hot path between roles) is checked without a promise.
 */
export function authorize(op: string, access: OpAccess<unknown>, args: unknown, principal: Principal, keys: KeyVerifier | undefined): Principal | Promise<Principal> {
  if (principal.kind === "node") {
    if (!access.callers.includes(principal.role as NodeRole)) throw new ForbiddenError(`${principal.role} ${principal.id} may not call ${op}`);
    const claimed = access.self?.(args);
    if (claimed !== undefined && claimed !== principal.id) {
      throw new ForbiddenError(`${principal.role} ${principal.id} may not speak for ${claimed}: its certificate names ${principal.id}`);
    }
    return principal;
  }
  return authorizeKey(op, access, args, principal, keys);
}

async function authorizeKey(op: string, access: OpAccess<unknown>, args: unknown, principal: Exclude<Principal, { kind: "node" }>, keys: KeyVerifier | undefined): Promise<Principal> {
  if (!access.callers.includes("key")) throw new ForbiddenError(`${op} is for the VSS's own nodes, which connect with a certificate of this VSS's CA`);
  if (principal.kind === "anonymous") throw new ForbiddenError(noKey);
  const record = keys ? await keys.lookup(principal.accessKey) : undefined;
  if (!record) throw new ForbiddenError(`access key ${principal.accessKey} is no longer known to this VSS`);
  if (record.revoked) throw new ForbiddenError(`access key ${principal.accessKey} was revoked; ask an admin for a new one (mictlanx key create)`);
  checkNeed(op, access, args, record);
  return { kind: "key", accessKey: record.accessKey, record };
}

function checkNeed(op: string, access: OpAccess<unknown>, args: unknown, record: KeyRecord): void {
  const need = access.key;
  if (need === undefined || need === "any") return;
  if (need === "admin") {
    if (!record.admin) throw new ForbiddenError(`key ${record.accessKey} is not an admin key; ${op} needs one (mictlanx key create --admin)`);
    return;
  }
  if ("someBucket" in need) {
    if (!record.grants.some((grant) => grant.allow.includes(need.action))) throw new ForbiddenError(`key ${record.accessKey} may not ${verbs[need.action]} any bucket`);
    return;
  }
  const bucket = need.bucket(args);
  if (!grantsAllow(record.grants, bucket, need.action)) throw new ForbiddenError(`key ${record.accessKey} may not ${verbs[need.action]} bucket ${bucket}`);
}

const verbs: Record<Action, string> = { read: "read", list: "list", write: "write to", delete: "delete from" };

/** The buckets a key may `action` (bucket.list shows only these); every bucket for a caller that is not a key. */
export function bucketFilter(principal: Principal, action: Action): (bucket: string) => boolean {
  if (principal.kind !== "key" || !principal.record) return () => true;
  const grants = principal.record.grants;
  return (bucket) => grantsAllow(grants, bucket, action);
}
