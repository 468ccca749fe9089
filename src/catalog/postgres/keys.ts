// Access keys and the audit log on PostgreSQL: src/catalog/access-keys.ts and audit-log.ts call
// for call. Secrets are sealed with the master key of secrets.key (secrets.ts) before they
// reach the server: the database (and pg_dump of it) holds no secret in the clear.
import { assert } from "../../lib/assert.ts";
import { secretKeyPattern } from "../../lib/access-keys.ts";
import { BadRequestError, ConflictError } from "../../lib/errors.ts";
import { limits } from "../../lib/limits.ts";
import { accessKeyWireBytes, checkAccessKeyId, checkGrants, summaryFromRow } from "../access-keys.ts";
import { checkAuditInput, recordFromRow } from "../audit-log.ts";
import { seal } from "../secrets.ts";
import type { AccessKeyRow, AuditRow } from "../statements.ts";
import type { AccessKeyRecord, AccessKeySummary, AuditInput, AuditRecord } from "../types.ts";
import { checkInt } from "../validate.ts";
import { openedKey } from "../rules.ts";
import { all, one, type Db } from "./db.ts";


const keyColumns = (db: Db) => db.unsafe("access_key, secret_sealed, grants, admin, created_ms, revoked_ms");

async function keyRow(db: Db, accessKey: string): Promise<AccessKeyRow | undefined> {
  return one<AccessKeyRow>(db`SELECT ${keyColumns(db)} FROM access_keys WHERE access_key = ${accessKey}`);
}

export async function countAccessKeys(db: Db): Promise<number> {
  return (await one<{ n: number }>(db`SELECT count(*) AS n FROM access_keys`))!.n;
}

export async function createAccessKey(db: Db, masterKey: Uint8Array, key: AccessKeyRecord): Promise<AccessKeySummary> {
  const accessKey = checkAccessKeyId(key.accessKey);
  if (typeof key.secretKey !== "string" || !secretKeyPattern.test(key.secretKey)) throw new BadRequestError("a secret key is 40 letters and digits");
  const grants = checkGrants(key.grants);
  if (typeof key.admin !== "boolean") throw new BadRequestError("admin must be true or false");
  if (grants.length === 0 && !key.admin) throw new BadRequestError("a key with no grants and no admin could do nothing; give it a grant or admin");
  checkInt("createdMs", key.createdMs);
  if ((await keyRow(db, accessKey)) !== undefined) throw new ConflictError(`access key ${accessKey} already exists`);
  const count = await countAccessKeys(db);
  if (count >= limits.accessKeysMax) throw new BadRequestError(`the catalog holds ${count} access keys, the most it keeps (accessKeysMax); revoked keys count too`);
  await db`INSERT INTO access_keys (access_key, secret_sealed, grants, admin, created_ms)
    VALUES (${accessKey}, ${seal(masterKey, accessKey, key.secretKey)}, ${JSON.stringify(grants)}, ${key.admin ? 1 : 0}, ${key.createdMs})`;
  return { accessKey, grants, admin: key.admin, createdMs: key.createdMs };
}

export async function getAccessKey(db: Db, masterKey: Uint8Array, accessKey: string): Promise<AccessKeyRecord | undefined> {
  const row = await keyRow(db, checkAccessKeyId(accessKey));
  if (row === undefined) return undefined;
  return openedKey(summaryFromRow(row), row.secret_sealed, masterKey, accessKey);
}

export async function listAccessKeys(db: Db, q: { after?: string; limit: number }): Promise<{ keys: AccessKeySummary[]; next?: string }> {
  checkInt("limit", q.limit, 1, limits.accessKeysPageMax);
  const after = q.after === undefined ? "" : checkAccessKeyId(q.after);
  const rows = await all<AccessKeyRow>(db`SELECT ${keyColumns(db)} FROM access_keys WHERE access_key > ${after} ORDER BY access_key LIMIT ${q.limit + 1}`);
  const keys: AccessKeySummary[] = [];
  let bytes = 0;
  for (const row of rows.slice(0, q.limit)) {
    const key = summaryFromRow(row);
    bytes += accessKeyWireBytes(key);
    if (bytes > limits.metadataPageBytesMax && keys.length > 0) break;
    keys.push(key);
  }
  return rows.length > keys.length ? { keys, next: keys[keys.length - 1]!.accessKey } : { keys };
}

export async function revokeAccessKey(db: Db, accessKey: string, revokedMs: number): Promise<AccessKeySummary | undefined> {
  checkInt("revokedMs", revokedMs);
  const id = checkAccessKeyId(accessKey);
  if ((await keyRow(db, id)) === undefined) return undefined;
  await db`UPDATE access_keys SET revoked_ms = ${revokedMs} WHERE access_key = ${id} AND revoked_ms IS NULL`;
  const row = await keyRow(db, id);
  assert(row !== undefined && row.revoked_ms !== null, `access key ${id} is not revoked after its revocation`);
  return summaryFromRow(row);
}

/**
 * Append a record as seq max + 1 (writes are serialized by the writer lock, and a rolled-back
 * append leaves no gap, as sqlite's rowid does), trimming the oldest past auditRecordsMax.
 */
export async function appendAudit(db: Db, record: AuditInput): Promise<number> {
  checkAuditInput(record);
  const row = await one<{ seq: number }>(db`INSERT INTO audit_log (seq, at_ms, access_key, remote, action, target, outcome)
    SELECT coalesce(max(seq), 0) + 1, ${record.atMs}, ${record.accessKey}, ${record.remote}, ${record.action}, ${record.target}, ${record.outcome} FROM audit_log
    RETURNING seq`);
  const seq = row?.seq ?? 0;
  assert(Number.isSafeInteger(seq) && seq >= 1, `audit record got seq ${seq}`);
  if (seq > limits.auditRecordsMax) await db`DELETE FROM audit_log WHERE seq <= ${seq - limits.auditRecordsMax}`;
  return seq;
}

export async function listAudit(db: Db, q: { before?: number; limit: number }): Promise<{ records: AuditRecord[]; next?: number }> {
  checkInt("limit", q.limit, 1, limits.auditPageMax);
  const before = q.before === undefined ? Number.MAX_SAFE_INTEGER : checkInt("before", q.before, 1);
  const rows = await all<AuditRow>(db`SELECT seq, at_ms, access_key, remote, action, target, outcome FROM audit_log WHERE seq < ${before} ORDER BY seq DESC LIMIT ${q.limit + 1}`);
  const records = rows.slice(0, q.limit).map(recordFromRow);
  return rows.length > q.limit ? { records, next: records[records.length - 1]!.seq } : { records };
}
