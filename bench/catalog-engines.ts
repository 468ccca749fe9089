// The catalog's two engines side by side, in one run on one machine: commitBall and getBall
// rates through CatalogStore on bun:sqlite and on a real PostgreSQL (started here as the tests
// start it: test/support/postgres.ts, fsync on, loopback TCP). Commits alone (one transaction
// each), commits in groups as the SPM's write batcher makes them, gets one at a time and gets
// with several in flight. Prints each rate and PostgreSQL's as a share of sqlite's.
//   bun bench/catalog-engines.ts [--commits 2000] [--batch 16] [--gets 4000] [--in-flight 8]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SqliteStore, type CatalogStore, type GroupWrite } from "../src/catalog/index.ts";
import { PostgresStore } from "../src/catalog/postgres/store.ts";
import { postgresMissing, startTestPostgres } from "../test/support/postgres.ts";
import { mulberry32, seededRandom } from "../test/support/random.ts";

const { values } = parseArgs({
  options: { commits: { type: "string", default: "2000" }, batch: { type: "string", default: "16" }, gets: { type: "string", default: "4000" }, "in-flight": { type: "string", default: "8" } },
});
const commits = Number(values.commits);
const batch = Number(values.batch);
const gets = Number(values.gets);
const inFlight = Number(values["in-flight"]);
const peers = ["peer-a", "peer-b", "peer-c"];
const checksum = "ab".repeat(32);

function ballFor(n: number) {
  const key = `dir-${n % 97}/object-${n}`;
  const ball = { bucket: "bench", key, ballId: key, objectId: `obj-${n}`, size: 8192, checksum, contentType: "application/octet-stream", tags: { n: String(n) }, rf: 2, createdMs: 1_700_000_000_000, chunkSize: 4096, numChunks: 2 };
  const chunks = [0, 1].map((index) => ({ index, size: 4096, checksum: "cd".repeat(8), peers: [peers[n % 3]!, peers[(n + 1) % 3]!].sort() }));
  return { ball, chunks };
}

type Rates = Record<string, number>;

async function measure(store: CatalogStore, random: () => number): Promise<Rates> {
  for (const id of peers) await store.upsertPeer({ id, address: `127.0.0.1:${7000 + id.length}`, capacityBytes: 1 << 30, usedBytes: 0, freeBytes: 1 << 30, chunks: 0, state: "up", lastHeartbeatMs: 1, registeredMs: 1, draining: false });
  const rates: Rates = {};
  const alone = Math.max(1, Math.floor(commits / 8));
  let started = performance.now();
  for (let n = 0; n < alone; n += 1) {
    const { ball, chunks } = ballFor(n);
    await store.commitBall(ball, chunks);
  }
  rates["commitBall alone /s"] = alone / ((performance.now() - started) / 1000);
  started = performance.now();
  for (let n = alone; n < alone + commits; n += batch) {
    const writes: GroupWrite[] = Array.from({ length: Math.min(batch, alone + commits - n) }, (_, i) => ballFor(n + i)).map(({ ball, chunks }) => (tx) => tx.commitBall(ball, chunks));
    await store.group(writes);
  }
  rates[`commitBall in groups of ${batch} /s`] = commits / ((performance.now() - started) / 1000);
  const total = alone + commits;
  const keys = Array.from({ length: gets }, () => ballFor(Math.floor(random() * total)).ball.key);
  started = performance.now();
  for (const key of keys) if ((await store.getBall("bench", key)) === undefined) throw new Error(`lost ${key}`);
  rates["getBall one at a time /s"] = gets / ((performance.now() - started) / 1000);
  started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < keys.length) if ((await store.getBall("bench", keys[next++]!)) === undefined) throw new Error("lost a ball");
    }),
  );
  rates[`getBall ${inFlight} in flight /s`] = gets / ((performance.now() - started) / 1000);
  const problems = await store.audit();
  if (problems.length > 0) throw new Error(`audit: ${problems.join("; ")}`);
  return rates;
}

const missing = postgresMissing();
if (missing !== undefined) throw new Error(missing);
const { seed } = seededRandom("catalog-engines"); // both engines get the same keys to read
const dir = mkdtempSync(join(tmpdir(), "mictlanx-catalog-engines-"));
const server = await startTestPostgres("bench");
try {
  const sqlite = SqliteStore.open(join(dir, "catalog.sqlite"));
  const sqliteRates = await measure(sqlite, mulberry32(seed));
  await sqlite.close();
  const postgres = await PostgresStore.open(await server.createDatabase(), { secretsKeyPath: join(dir, "secrets.key") });
  const postgresRates = await measure(postgres, mulberry32(seed));
  await postgres.close();
  console.log(`catalog engines: ${commits} grouped commits, ${gets} gets, balls of 2 chunks on 2 peers (seed ${seed})`);
  console.log(`${"".padEnd(34)} ${"sqlite".padStart(10)} ${"postgres".padStart(10)}  postgres/sqlite`);
  for (const [what, rate] of Object.entries(sqliteRates)) {
    const other = postgresRates[what] ?? 0;
    console.log(`${what.padEnd(34)} ${rate.toFixed(0).padStart(10)} ${other.toFixed(0).padStart(10)}  ${((100 * other) / rate).toFixed(0)} %`);
  }
} finally {
  await server.cleanup();
  rmSync(dir, { recursive: true, force: true });
}

