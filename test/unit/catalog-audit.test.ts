// The audit log: in the catalog (bounded, trimmed in the append's transaction, pages newest
// first by count and by bytes), and on the SPM's side (who is recorded, a delete and its record
// in one transaction of the group commit, failures recorded on their own).
import { afterEach, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pack as encode } from "msgpackr";
import { SqliteStore, type AuditInput, type CatalogStore } from "../../src/catalog/index.ts";
import { SteppedClock } from "../../src/lib/clock.ts";
import { ConflictError } from "../../src/lib/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import { AuditTrail, actorOf, deleteActorOf } from "../../src/roles/spm/audit.ts";
import { WriteBatcher } from "../../src/roles/spm/write-batcher.ts";
import { ballOf, peerRecord } from "./fixtures/catalog-records.ts";
import { rejection } from "../support/errors.ts";
import { forEachEngine, type OpenedCatalog } from "../support/catalog-engines.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const key = "MXA2B3C4D5E6F7G2H3I4";
const record = (overrides: Partial<AuditInput> = {}): AuditInput => ({ atMs: 1_000, accessKey: key, remote: "10.0.0.7", action: "ball.delete", target: "photos/cat.jpg", outcome: "ok", ...overrides });

forEachEngine("catalog-audit", (engine) => {
  /**
   * `count` records appended (seq 1..count): on sqlite through appendAudit in one group; on
   * PostgreSQL, where that many appends cost a round trip each (~30 s), written in one statement
   * with the rows appendAudit would have made.
   */
  async function fill(opened: OpenedCatalog, count: number, of: (i: number) => AuditInput): Promise<void> {
    if (engine.name === "sqlite") {
      await opened.store.group([async (tx) => {
        for (let i = 1; i <= count; i += 1) await tx.appendAudit(of(i));
      }]);
      return;
    }
    const sql = new SQL(opened.location, { max: 1 });
    try {
      const rows = Array.from({ length: count }, (_, n) => ({ seq: n + 1, ...of(n + 1) }));
      for (let from = 0; from < rows.length; from += 10_000) {
        const page = rows.slice(from, from + 10_000);
        await sql`INSERT INTO audit_log (seq, at_ms, access_key, remote, action, target, outcome)
          SELECT * FROM unnest(${sql.array(page.map((r) => r.seq), "BIGINT")}::bigint[], ${sql.array(page.map((r) => r.atMs), "BIGINT")}::bigint[],
            ${sql.array(page.map((r) => r.accessKey), "TEXT")}::text[], ${sql.array(page.map((r) => r.remote), "TEXT")}::text[], ${sql.array(page.map((r) => r.action), "TEXT")}::text[],
            ${sql.array(page.map((r) => r.target), "TEXT")}::text[], ${sql.array(page.map((r) => r.outcome), "TEXT")}::text[])`;
      }
    } finally {
      await sql.close();
    }
  }

  describe("the audit log in the catalog", () => {
    test("records come back newest first, every field kept; pages go back with `before`", async () => {
      const { store: catalog } = await engine.open();
      for (let i = 1; i <= 25; i += 1) await catalog.appendAudit(record({ atMs: i, target: `photos/${i}`, accessKey: i % 2 === 0 ? null : key }));
      const first = await catalog.listAudit({ limit: 10 });
      expect(first.records.map((r) => r.seq)).toEqual([25, 24, 23, 22, 21, 20, 19, 18, 17, 16]);
      expect(first.records[0]).toEqual({ seq: 25, atMs: 25, accessKey: key, remote: "10.0.0.7", action: "ball.delete", target: "photos/25", outcome: "ok" });
      expect(first.records[1]?.accessKey).toBeNull();
      expect(first.next).toBe(16);
      const seqs = [...first.records.map((r) => r.seq)];
      for (let before = first.next; before !== undefined; ) {
        const page = await catalog.listAudit({ before, limit: 10 });
        seqs.push(...page.records.map((r) => r.seq));
        before = page.next;
      }
      expect(seqs).toEqual(Array.from({ length: 25 }, (_, i) => 25 - i));
      expect((await catalog.listAudit({ limit: 25 })).next).toBeUndefined();
    });

    test(`auditRecordsMax (${limits.auditRecordsMax}) records are kept: the next append trims the oldest in its own transaction`, async () => {
      const opened = await engine.open();
      const catalog: CatalogStore = opened.store;
      await fill(opened, limits.auditRecordsMax, (i) => record({ atMs: i }));
      const oldest = async () => {
        let page = await catalog.listAudit({ limit: limits.auditPageMax });
        let last = page.records[page.records.length - 1]!;
        let count = page.records.length;
        while (page.next !== undefined) {
          page = await catalog.listAudit({ before: page.next, limit: limits.auditPageMax });
          count += page.records.length;
          last = page.records[page.records.length - 1] ?? last;
        }
        return { seq: last.seq, count };
      };
      expect(await oldest()).toEqual({ seq: 1, count: limits.auditRecordsMax });
      expect(await catalog.appendAudit(record({ atMs: 0 }))).toBe(limits.auditRecordsMax + 1);
      expect(await oldest()).toEqual({ seq: 2, count: limits.auditRecordsMax });
      // A rolled-back append trims nothing: the trim is in its transaction.
      const [outcome] = await catalog.group([
        async (tx) => {
          await tx.appendAudit(record());
          throw new ConflictError("rolled back");
        },
      ]);
      expect(outcome).toMatchObject({ ok: false, error: { message: "rolled back" } });
      expect(await oldest()).toEqual({ seq: 2, count: limits.auditRecordsMax });
      expect(await catalog.appendAudit(record())).toBe(limits.auditRecordsMax + 2); // no seq is reused, none skipped
    }, 120_000);

    test(`a full page (auditPageMax, ${limits.auditPageMax}) of records at their largest fits a metadata page`, async () => {
      const { store: catalog } = await engine.open();
      const longest = record({
        target: "t".repeat(limits.auditTargetBytesMax),
        remote: "r".repeat(limits.auditRemoteBytesMax),
        action: "a".repeat(limits.auditActionBytesMax),
        outcome: "o".repeat(limits.auditOutcomeBytesMax),
      });
      await catalog.group([
        async (tx) => {
          for (let i = 0; i < limits.auditPageMax + 1; i += 1) await tx.appendAudit(longest);
        },
      ]);
      const page = await catalog.listAudit({ limit: limits.auditPageMax });
      expect(page.records).toHaveLength(limits.auditPageMax);
      expect(page.next).toBe(2);
      expect(encode(page.records).byteLength).toBeLessThanOrEqual(limits.metadataPageBytesMax);
    });

    test("bounds and shapes are checked on the way in", async () => {
      const { store: catalog } = await engine.open();
      expect(await catalog.appendAudit(record({ target: "t".repeat(limits.auditTargetBytesMax) }))).toBe(1);
      expect((await rejection(catalog.appendAudit(record({ target: "t".repeat(limits.auditTargetBytesMax + 1) })))).message).toContain(`limit is ${limits.auditTargetBytesMax}`);
      expect((await rejection(catalog.appendAudit(record({ remote: "r".repeat(limits.auditRemoteBytesMax + 1) })))).code).toBe("bad_request");
      expect((await rejection(catalog.appendAudit(record({ action: "" })))).code).toBe("bad_request");
      expect((await rejection(catalog.appendAudit(record({ accessKey: "not-a-key" })))).message).toContain("is not an access key id");
      expect((await rejection(catalog.listAudit({ limit: limits.auditPageMax + 1 }))).code).toBe("bad_request");
      expect((await rejection(catalog.listAudit({ before: 0, limit: 1 }))).code).toBe("bad_request");
    });
  });
});

describe("who is recorded", () => {
  test("the caller: its key when the net layer proved one, else none; always its address", () => {
    expect(actorOf({ remote: "10.0.0.1" })).toEqual({ accessKey: null, remote: "10.0.0.1" });
    expect(actorOf({ remote: "10.0.0.1", principal: { kind: "key", accessKey: key } })).toEqual({ accessKey: key, remote: "10.0.0.1" });
    expect(actorOf({ remote: "10.0.0.1", principal: { kind: "node", role: "router", id: "r1" } })).toEqual({ accessKey: null, remote: "10.0.0.1" });
    expect(actorOf({ remote: "10.0.0.1", principal: { kind: "anonymous" } })).toEqual({ accessKey: null, remote: "10.0.0.1" });
  });

  test("for a delete, a router speaks for its client; a key holder or another node is recorded as itself", () => {
    const claimed = { accessKey: key, remote: "192.168.1.9" };
    expect(deleteActorOf({ remote: "10.0.0.2" }, claimed)).toEqual({ accessKey: key, remote: "192.168.1.9" });
    expect(deleteActorOf({ remote: "10.0.0.2", principal: { kind: "node", role: "router", id: "r1" } }, claimed)).toEqual({ accessKey: key, remote: "192.168.1.9" });
    expect(deleteActorOf({ remote: "10.0.0.2", principal: { kind: "node", role: "peer", id: "p1" } }, claimed)).toEqual({ accessKey: null, remote: "10.0.0.2" });
    const other = "MXZZZZZZZZZZZZZZZZZZ";
    expect(deleteActorOf({ remote: "10.0.0.2", principal: { kind: "key", accessKey: other } }, claimed)).toEqual({ accessKey: other, remote: "10.0.0.2" });
    expect(deleteActorOf({ remote: "10.0.0.2" }, { remote: "192.168.1.9" })).toEqual({ accessKey: null, remote: "192.168.1.9" });
    expect(deleteActorOf({ remote: "10.0.0.2" }, undefined)).toEqual({ accessKey: null, remote: "10.0.0.2" });
  });
});

describe("the audit trail on the SPM", () => {
  function trail() {
    const dir = mkdtempSync(join(tmpdir(), "mictlanx-audit-"));
    dirs.push(dir);
    const store = SqliteStore.open(join(dir, "catalog.sqlite")) as SqliteStore & CatalogStore;
    const catalog = store.catalog; // the same connection, called directly to set up and to look
    for (const id of ["p1", "p2"]) catalog.upsertPeer(peerRecord(id));
    const events: string[] = [];
    const writes = new WriteBatcher(store);
    const clock = new SteppedClock(5_000);
    return { catalog, writes, events, audit: new AuditTrail({ catalog: store, writes, clock, event: (kind, message) => events.push(`${kind}: ${message}`) }) };
  }
  const actor = { accessKey: key, remote: "10.0.0.3" };

  test("a delete and its record commit together; a delete of nothing is recorded not_found", async () => {
    const { catalog, writes, audit } = trail();
    const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
    catalog.commitBall(ball, chunks, {});
    const deleted = await audit.write({ actor, action: "ball.delete", target: "bucket/k" }, (tx) => tx.deleteBall("bucket", "k"), (found) => (found ? "ok" : "not_found"));
    expect(deleted?.objectId).toBe("o1");
    const missing = await audit.write({ actor, action: "ball.delete", target: "bucket/k" }, (tx) => tx.deleteBall("bucket", "k"), (found) => (found ? "ok" : "not_found"));
    expect(missing).toBeUndefined();
    expect(catalog.listAudit({ limit: 10 }).records).toEqual([
      { seq: 2, atMs: 5_000, accessKey: key, remote: "10.0.0.3", action: "ball.delete", target: "bucket/k", outcome: "not_found" },
      { seq: 1, atMs: 5_000, accessKey: key, remote: "10.0.0.3", action: "ball.delete", target: "bucket/k", outcome: "ok" },
    ]);
    expect(writes.stats.flushes).toBe(2); // one group each: the record rode with its delete
    catalog.close();
  });

  test("a write that throws is rolled back with its record, and the failure is recorded on its own", async () => {
    const { catalog, audit } = trail();
    const error = await rejection(
      audit.write({ actor, action: "bucket.delete", target: "full" }, async (tx) => {
        await tx.createBucket("made-then-undone", 1);
        throw new ConflictError("bucket full holds 3 balls");
      }),
    );
    expect(error.code).toBe("conflict");
    expect(catalog.getBucket("made-then-undone")).toBeUndefined();
    expect(catalog.listAudit({ limit: 10 }).records.map((r) => [r.action, r.target, r.outcome])).toEqual([["bucket.delete", "full", "conflict"]]);
    catalog.close();
  });

  test("an op that writes elsewhere is recorded once done, ok or its error code", async () => {
    const { catalog, audit } = trail();
    expect(await audit.around({ actor, action: "peer.drain", target: "p1" }, async () => ({ id: "p1" }))).toEqual({ id: "p1" });
    expect((await rejection(audit.around({ actor, action: "peer.remove", target: "p9" }, async () => {
      throw new ConflictError("peer p9 is up");
    }))).code).toBe("conflict");
    expect(catalog.listAudit({ limit: 10 }).records.map((r) => [r.action, r.target, r.outcome])).toEqual([
      ["peer.remove", "p9", "conflict"],
      ["peer.drain", "p1", "ok"],
    ]);
    catalog.close();
  });

  test("a record that cannot be written is said in the event log, and the op's own outcome stands", async () => {
    const { catalog, audit, events } = trail();
    const tooLong = "t".repeat(limits.auditTargetBytesMax + 1);
    expect(await audit.around({ actor, action: "peer.undrain", target: tooLong }, async () => "done")).toBe("done");
    expect(events.some((line) => line.startsWith("audit_lost: the audit record of peer.undrain"))).toBe(true);
    expect(catalog.listAudit({ limit: 10 }).records).toEqual([]);
    catalog.close();
  });
});
