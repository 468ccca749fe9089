// The audit log: who did what to what, when and from where, for admin operations and deletes.
// Bounded: an append past auditRecordsMax trims the oldest in the same transaction, so the log
// costs one insert and (once full) one delete of a row at the far end of the primary key.
// Callers run appends in a transaction: the SPM's group commit, beside the write they record.
// (Not to be confused with audit.ts, which recounts the catalog's totals.)
import { assert } from "../lib/assert.ts";
import { accessKeyIdPrefix, accessKeyIdRandomChars } from "../lib/access-keys.ts";
import { BadRequestError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { stringWireBytes } from "../lib/wire-size.ts";
import { checkAccessKeyId } from "./access-keys.ts";
import type { AuditRow, Statements } from "./statements.ts";
import type { AuditInput, AuditRecord } from "./types.ts";
import { checkInt, utf8Bytes } from "./validate.ts";

function checkText(what: string, value: unknown, maxBytes: number, allowEmpty = false): string {
  if (typeof value !== "string" || (!allowEmpty && value.length === 0)) throw new BadRequestError(`audit ${what} must be a non-empty string`);
  const bytes = utf8Bytes(value);
  if (bytes > maxBytes) throw new BadRequestError(`audit ${what} is ${bytes} bytes; the limit is ${maxBytes}`);
  return value;
}

export function checkAuditInput(record: AuditInput): void {
  checkInt("audit atMs", record.atMs);
  if (record.accessKey !== null) checkAccessKeyId(record.accessKey);
  checkText("remote", record.remote, limits.auditRemoteBytesMax, true);
  checkText("action", record.action, limits.auditActionBytesMax);
  checkText("target", record.target, limits.auditTargetBytesMax, true);
  checkText("outcome", record.outcome, limits.auditOutcomeBytesMax);
}

/** Append a record, trimming the oldest past auditRecordsMax; returns its seq. */
export function appendAudit(s: Statements, record: AuditInput): number {
  checkAuditInput(record);
  const seq = Number(
    s.auditInsert.run({
      at_ms: record.atMs,
      access_key: record.accessKey,
      remote: record.remote,
      action: record.action,
      target: record.target,
      outcome: record.outcome,
    }).lastInsertRowid,
  );
  assert(Number.isSafeInteger(seq) && seq >= 1, `audit record got seq ${seq}`);
  if (seq > limits.auditRecordsMax) s.auditTrim.run({ through: seq - limits.auditRecordsMax });
  return seq;
}

/**
 * The most one record weighs on the wire (an upper bound, as src/lib/wire-size.ts counts):
 * every text at its limit. A page of auditPageMax of them fits metadataPageBytesMax (asserted
 * below), so pages are cut by count alone.
 */
const auditRecordWireBytesMax =
  5 + 7 * stringWireBytes("accessKey") + 2 * 9 + 5 * 5 + accessKeyIdPrefix.length + accessKeyIdRandomChars + limits.auditRemoteBytesMax + limits.auditActionBytesMax + limits.auditTargetBytesMax + limits.auditOutcomeBytesMax;
assert(limits.auditPageMax * auditRecordWireBytesMax <= limits.metadataPageBytesMax, "a page of audit records at their largest must fit a metadata page");

/**
 * A page of the log, newest first, from before `before` (the newest when absent): at most
 * `limit` records; `next` (a seq to pass as `before`) when older ones follow.
 */
export function listAudit(s: Statements, q: { before?: number; limit: number }): { records: AuditRecord[]; next?: number } {
  checkInt("limit", q.limit, 1, limits.auditPageMax);
  const before = q.before === undefined ? Number.MAX_SAFE_INTEGER : checkInt("before", q.before, 1);
  const rows = s.auditPage.all({ before, limit: q.limit + 1 });
  const records = rows.slice(0, q.limit).map(recordFromRow);
  return rows.length > q.limit ? { records, next: records[records.length - 1]!.seq } : { records };
}

export function recordFromRow(row: AuditRow): AuditRecord {
  assert(Number.isSafeInteger(row.seq) && row.seq >= 1 && Number.isSafeInteger(row.at_ms), `audit row ${row.seq} has a bad number`);
  assert(typeof row.action === "string" && typeof row.outcome === "string", `audit row ${row.seq} lacks its action or outcome`);
  return { seq: row.seq, atMs: row.at_ms, accessKey: row.access_key, remote: row.remote, action: row.action, target: row.target, outcome: row.outcome };
}
