// `mictlanx catalog migrate`: a sqlite catalog holding every kind of row is copied into a real
// PostgreSQL, and the copy answers every call as the source did (sealed secrets open with the
// same secrets.key, the VSS keeps its id, ids and audit seqs continue); a non-empty target is
// refused unless replaced, a source still being written is refused, and the CLI prints what it
// copied.
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { SqliteStore, type CatalogStore } from "../../src/catalog/index.ts";
import { migrateCatalog } from "../../src/catalog/migrate.ts";
import { PostgresStore } from "../../src/catalog/postgres/store.ts";
import { newAccessKeyId, newSecretKey } from "../../src/lib/access-keys.ts";
import { ballOf, peerRecord } from "./fixtures/catalog-records.ts";
import { rejection } from "../support/errors.ts";
import { postgresMissing, startTestPostgres, type TestPostgres } from "../support/postgres.ts";
import { tempDir } from "../support/vss.ts";
import { rmSync } from "node:fs";

const missing = postgresMissing();
if (missing !== undefined) console.log(`[catalog-migrate] ${missing}`);
let server: Promise<TestPostgres> | undefined;
const pg = () => (server ??= startTestPostgres("catalog-migrate"));
const dirs: string[] = [];
afterAll(async () => {
  if (server !== undefined) await (await server).cleanup();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const key = { accessKey: newAccessKeyId(), secretKey: newSecretKey(), grants: [{ bucket: "photos", allow: ["read" as const, "list" as const] }], admin: false, createdMs: 1_000 };

/** A sqlite catalog in DIR holding a row of every table: what an SPM leaves after a while. */
async function richCatalog(): Promise<{ dir: string; store: CatalogStore }> {
  const dir = tempDir("catalog-migrate");
  dirs.push(dir);
  const store = SqliteStore.open(join(dir, "catalog.sqlite"));
  for (const id of ["p1", "p2", "p3", "p4"]) await store.upsertPeer(peerRecord(id, { instanceId: `i-${id}` }));
  for (let n = 0; n < 30; n += 1) {
    const { ball, chunks } = ballOf({ bucket: `b${n % 3}`, key: `k${n % 11}`, objectId: `o${n}`, peers: [["p1", "p2"], ["p2", "p3"]], tags: { n: String(n), "é": "ü" } });
    await store.commitBall(ball, chunks, { retire: { atMs: 5_000, readerGraceMs: 60_000 } });
  }
  await store.deleteBall("b0", "k0", { atMs: 6_000, readerGraceMs: 60_000 });
  await store.setPeerState("p3", "down"); // chunks under-replicated
  await store.setDraining("p4", true);
  await store.addIntent({ objectId: "up1", bucket: "b1", key: "big", createdMs: 1, expiresMs: 1e15, placements: [{ index: 0, peers: ["p1", "p2"] }], requestId: "req-1", chunkBytes: 1024 });
  await store.stageChunks("up1", [{ index: 0, size: 1024, checksum: "0".repeat(16), peers: ["p1", "p2"] }], 1e15);
  await store.addIntent({ objectId: "gone", bucket: "b1", key: "x", createdMs: 1, expiresMs: 2, placements: [{ index: 0, peers: ["p1"] }] });
  await store.abandonIntent("gone", 10);
  await store.addIntent({ objectId: "done", bucket: "b2", key: "req", createdMs: 1, expiresMs: 1e15, placements: [{ index: 0, peers: ["p1", "p2"] }], requestId: "req-2" });
  const done = ballOf({ bucket: "b2", key: "req", objectId: "done", peers: [["p1", "p2"]] });
  await store.commitBall(done.ball, done.chunks, { requirePlacements: true });
  await store.createBucket("empty", 7_000);
  await store.setBucketSetting("b1", "acl", "public-read");
  await store.setBucketSetting("b2", "lifecycle", '{"rules":[]}');
  await store.createAccessKey(key);
  for (let i = 0; i < 5; i += 1) await store.appendAudit({ atMs: i, accessKey: i % 2 === 0 ? key.accessKey : null, remote: "10.0.0.1", action: "ball.delete", target: `b0/k${i}`, outcome: "ok" });
  await store.setMeta("healed", "42");
  return { dir, store };
}

/** Everything a catalog answers, call by call. */
async function snapshot(c: CatalogStore) {
  const buckets = (await c.listBuckets({ limit: 100 })).buckets;
  const balls = [];
  for (const bucket of buckets) for (const ball of (await c.listBalls({ bucket: bucket.name, limit: 1000 })).balls) balls.push(await c.getBall(ball.bucket, ball.key));
  return {
    vssId: c.vssId,
    stats: await c.stats(),
    peers: await c.listPeers(),
    buckets,
    balls,
    under: await c.underReplicated({ limit: 1000 }),
    over: await c.overReplicated({ limit: 1000 }),
    onP2: await c.chunksOnPeer("p2", { limit: 1000 }),
    garbage: await c.takeGarbage({ limit: 1000 }),
    retired: [await c.findRetiredChunk("o0", 0), await c.retiredObject("gone"), await c.retiredObject("o0")],
    intent: await c.getIntent("up1"),
    requests: [await c.findRequest("req-1"), await c.findRequest("req-2")],
    key: await c.getAccessKey(key.accessKey),
    keys: await c.listAccessKeys({ limit: 100 }),
    audit: await c.listAudit({ limit: 100 }),
    settings: [await c.getBucketSetting("b1", "acl"), await c.bucketsWithSetting("lifecycle", "", 10)],
    meta: await c.getMeta("healed"),
  };
}

describe.skipIf(missing !== undefined)("catalog migrate", () => {
  test("copies every table; the copy answers every call as the source did, and goes on from there", async () => {
    const { dir, store } = await richCatalog();
    const before = await snapshot(store);
    expect(before.under.chunks.length).toBeGreaterThan(0);
    expect(before.garbage.length).toBeGreaterThan(0);
    await store.close();
    const url = await (await pg()).createDatabase();
    const lines: string[] = [];
    const report = await migrateCatalog(`sqlite:${dir}`, url, { pageRows: 7, progress: (line) => lines.push(line) });
    expect(report.vssId).toBe(before.vssId);
    expect(Object.fromEntries(report.tables.map((t) => [t.table, t.rows]))).toMatchObject({ balls: before.stats.balls, chunks: before.stats.chunks, replicas: before.stats.replicas, garbage: before.stats.garbage, peers: 4, access_keys: 1, audit_log: 5, bucket_settings: 2, intent_chunks: 1 });
    expect(lines).toContain(`balls: ${before.stats.balls} rows`);
    const copy = await PostgresStore.open(url, { secretsKeyPath: join(dir, "secrets.key") });
    try {
      expect(await snapshot(copy)).toEqual(before);
      expect(await copy.audit()).toEqual([]);
      // It goes on: new rows get ids past the copied ones, the audit log's seq continues.
      const next = ballOf({ bucket: "b0", key: "new", objectId: "o-new", peers: [["p1", "p2"]] });
      expect(await copy.commitBall(next.ball, next.chunks)).toEqual({ version: 1 });
      expect((await copy.getBall("b0", "new"))?.chunks[0]?.peers).toEqual(["p1", "p2"]);
      expect(await copy.appendAudit({ atMs: 9, accessKey: null, remote: "", action: "ball.delete", target: "b0/new", outcome: "ok" })).toBe(6);
      await copy.addGarbage([{ objectId: "o-x", index: 0, peerId: "p1", bucket: "b0" }]);
      expect(await copy.audit()).toEqual([]);
    } finally {
      await copy.close();
    }
  });

  test("a target that holds a catalog is refused, and nothing is written; --replace empties it first", async () => {
    const { dir, store } = await richCatalog();
    const stats = await store.stats();
    await store.close();
    const url = await (await pg()).createDatabase();
    const other = await PostgresStore.open(url, { secretsKeyPath: join(dir, "secrets.key") });
    await other.upsertPeer(peerRecord("stranger"));
    await other.close();
    const error = await rejection(migrateCatalog(`sqlite:${dir}`, url));
    expect(error.code).toBe("conflict");
    expect(error.message).toContain("is not empty (peers: 1 rows)");
    expect(error.message).toContain("--replace");
    const kept = await PostgresStore.open(url, { secretsKeyPath: join(dir, "secrets.key") });
    expect((await kept.listPeers()).map((peer) => peer.id)).toEqual(["stranger"]);
    await kept.close();
    const report = await migrateCatalog(`sqlite:${dir}`, url, { replace: true });
    expect(report.stats).toEqual(stats);
    const copy = await PostgresStore.open(url, { secretsKeyPath: join(dir, "secrets.key") });
    expect((await copy.listPeers()).map((peer) => peer.id)).toEqual(["p1", "p2", "p3", "p4"]);
    expect(await copy.stats()).toEqual(stats);
    await copy.close();
  });

  test("a source still being written (its SPM running) is refused; so are URLs of the wrong engines", async () => {
    const { dir, store } = await richCatalog();
    await store.close();
    const writer = new Database(join(dir, "catalog.sqlite"));
    writer.run("BEGIN IMMEDIATE");
    const url = await (await pg()).createDatabase();
    try {
      const error = await rejection(migrateCatalog(`sqlite:${dir}`, url));
      expect(error.code).toBe("conflict");
      expect(error.message).toContain("stop its SPM");
    } finally {
      writer.run("ROLLBACK");
      writer.close();
    }
    expect((await rejection(migrateCatalog(url, `sqlite:${dir}`))).code).toBe("usage");
    expect((await rejection(migrateCatalog(`sqlite:${dir}`, "mysql://h/db"))).message).toContain("postgres://");
  });

  test("the CLI: prints what it copied, exit 0; a second run into the same database exits 1 and says why", async () => {
    const { dir, store } = await richCatalog();
    const stats = await store.stats();
    await store.close();
    const url = await (await pg()).createDatabase();
    const cli = join(import.meta.dir, "fixtures", "catalog-migrate-cli.ts");
    const run = async (args: string[]) => {
      const proc = Bun.spawn([process.execPath, cli, "catalog", "migrate", ...args], { stdout: "pipe", stderr: "pipe" });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { stdout, stderr, code };
    };
    const first = await run(["--from", `sqlite:${dir}`, "--to", url]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`${stats.balls} balls`);
    expect(first.stdout).toContain("every count checked");
    expect(first.stderr).toContain(`copied balls: ${stats.balls} rows`);
    const again = await run(["--from", `sqlite:${dir}`, "--to", url, "--json"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("is not empty");
    const usage = await run(["--from", `sqlite:${dir}`]);
    expect(usage.code).toBe(2);
  });
});
