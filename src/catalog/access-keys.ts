// Access keys: made, looked up, listed a page at a time, revoked. Secrets are sealed on the way
// in and unsealed only by `getAccessKey` (secrets.ts); listings never touch them. Callers run
// the writes in a transaction.
import { assert } from "../lib/assert.ts";
import { accessKeyIdPattern, secretKeyPattern } from "../lib/access-keys.ts";
import { BadRequestError, ConflictError } from "../lib/errors.ts";
import { grantsSchema, normalizeGrants, type Grant } from "../lib/grants.ts";
import { limits } from "../lib/limits.ts";
import { stringWireBytes } from "../lib/wire-size.ts";
import { seal } from "./secrets.ts";
import type { AccessKeyRow, Statements } from "./statements.ts";
import type { AccessKeyRecord, AccessKeySummary } from "./types.ts";
import { checkInt } from "./validate.ts";
import { openedKey } from "./rules.ts";

export function checkAccessKeyId(accessKey: unknown): string {
  if (typeof accessKey !== "string" || !accessKeyIdPattern.test(accessKey)) {
    throw new BadRequestError(`${JSON.stringify(accessKey)} is not an access key id (MX and 18 letters A-Z or digits 2-7)`);
  }
  return accessKey;
}

export function checkGrants(grants: unknown): Grant[] {
  const parsed = grantsSchema.safeParse(grants);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadRequestError(`grants${issue && issue.path.length > 0 ? `.${issue.path.join(".")}` : ""}: ${issue?.message ?? "not a list of grants"}`);
  }
  return normalizeGrants(parsed.data);
}

/** Store a new key (its secret sealed); ConflictError when its id is taken, BadRequestError past accessKeysMax. */
export function createAccessKey(s: Statements, masterKey: Uint8Array, key: AccessKeyRecord): AccessKeySummary {
  const accessKey = checkAccessKeyId(key.accessKey);
  if (typeof key.secretKey !== "string" || !secretKeyPattern.test(key.secretKey)) throw new BadRequestError("a secret key is 40 letters and digits");
  const grants = checkGrants(key.grants);
  if (typeof key.admin !== "boolean") throw new BadRequestError("admin must be true or false");
  if (grants.length === 0 && !key.admin) throw new BadRequestError("a key with no grants and no admin could do nothing; give it a grant or admin");
  checkInt("createdMs", key.createdMs);
  if (s.accessKeyGet.get({ access_key: accessKey }) !== null) throw new ConflictError(`access key ${accessKey} already exists`);
  const count = s.accessKeyCount.get()!.n;
  if (count >= limits.accessKeysMax) throw new BadRequestError(`the catalog holds ${count} access keys, the most it keeps (accessKeysMax); revoked keys count too`);
  s.accessKeyInsert.run({
    access_key: accessKey,
    secret_sealed: seal(masterKey, accessKey, key.secretKey),
    grants: JSON.stringify(grants),
    admin: key.admin ? 1 : 0,
    created_ms: key.createdMs,
  });
  return { accessKey, grants, admin: key.admin, createdMs: key.createdMs };
}

/** A key with its secret unsealed, or undefined when there is none of that id. */
export function getAccessKey(s: Statements, masterKey: Uint8Array, accessKey: string): AccessKeyRecord | undefined {
  const row = s.accessKeyGet.get({ access_key: checkAccessKeyId(accessKey) });
  if (row === null) return undefined;
  return openedKey(summaryFromRow(row), row.secret_sealed, masterKey, accessKey);
}

/**
 * A page of keys in id order after `after`, at most `limit` and at most metadataPageBytesMax
 * of them on the wire (a key's grants can be long); `next` when more follow.
 */
export function listAccessKeys(s: Statements, q: { after?: string; limit: number }): { keys: AccessKeySummary[]; next?: string } {
  checkInt("limit", q.limit, 1, limits.accessKeysPageMax);
  const after = q.after === undefined ? "" : checkAccessKeyId(q.after);
  const rows = s.accessKeyPage.all({ after, limit: q.limit + 1 });
  const keys: AccessKeySummary[] = [];
  let bytes = 0;
  for (const row of rows.slice(0, q.limit)) {
    const key = summaryFromRow(row);
    bytes += accessKeyWireBytes(key);
    if (bytes > limits.metadataPageBytesMax && keys.length > 0) break;
    keys.push(key);
  }
  const more = rows.length > keys.length;
  return more ? { keys, next: keys[keys.length - 1]!.accessKey } : { keys };
}

/** Revoke a key; a key already revoked keeps its first time. Undefined when there is none of that id. */
export function revokeAccessKey(s: Statements, accessKey: string, revokedMs: number): AccessKeySummary | undefined {
  checkInt("revokedMs", revokedMs);
  const id = checkAccessKeyId(accessKey);
  if (s.accessKeyGet.get({ access_key: id }) === null) return undefined;
  s.accessKeyRevoke.run({ access_key: id, revoked_ms: revokedMs });
  const row = s.accessKeyGet.get({ access_key: id });
  assert(row !== null && row.revoked_ms !== null, `access key ${id} is not revoked after its revocation`);
  return summaryFromRow(row);
}

/** What one key weighs on the wire as key.list sends it (an upper bound; see src/lib/wire-size.ts). */
export function accessKeyWireBytes(key: AccessKeySummary): number {
  const grants = key.grants.reduce((sum, grant) => sum + 32 + stringWireBytes(grant.bucket) + grant.allow.reduce((n, action) => n + stringWireBytes(action), 5), 5);
  return 64 + stringWireBytes(key.accessKey) + grants;
}

export function summaryFromRow(row: AccessKeyRow): AccessKeySummary {
  assert(accessKeyIdPattern.test(row.access_key), `access key row with id ${JSON.stringify(row.access_key)}`);
  assert(row.admin === 0 || row.admin === 1, `access key ${row.access_key} has admin ${row.admin}`);
  const grants = grantsSchema.safeParse(JSON.parse(row.grants));
  assert(grants.success, `access key ${row.access_key} has grants the catalog would not have stored`);
  return {
    accessKey: row.access_key,
    grants: grants.data,
    admin: row.admin === 1,
    createdMs: row.created_ms,
    ...(row.revoked_ms === null ? {} : { revokedMs: row.revoked_ms }),
  };
}
