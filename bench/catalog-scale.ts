// The catalog at scale, on either engine, through CatalogStore (what the SPM calls):
//
//   bun bench/catalog-scale.ts [--balls 1000000] [--catalog sqlite:DIR | postgres://…] [--postgres]
//                              [--batch 1000] [--group 16] [--commits 2000] [--gets 5000] [--keep]
//
// --catalog names an empty catalog (default: sqlite in a temp dir, removed at the end unless
// --keep); --postgres starts a throwaway PostgreSQL as the tests do (test/support/postgres.ts:
// fsync on, loopback TCP) and removes it at the end. It measures, on the empty catalog and again
// once N balls are in it: commits in groups as the SPM's write batcher makes them (--group
// commitBall writes per group()), getBall of random existing keys one at a time and 8 in flight;
// then, at N, a full listing of the bucket in pages of 1000 (keys/s) and the lookups the SPM
// leans on (deep cursors, prefixes, ball groups, findChunk, a peer going down and its
// under-replicated pages). Seeding uses the catalog's own batched commitBalls inside group(),
// and prints its rate as it goes. Prints every rate at N as a share of the empty catalog's.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openCatalogStore, type CatalogStore, type CommitItem, type GroupWrite, type PeerRecord } from "../src/catalog/index.ts";
import { limits } from "../src/lib/limits.ts";
import { startTestPostgres, type TestPostgres } from "../test/support/postgres.ts";
import { mulberry32, seededRandom } from "../test/support/random.ts";

const { values } = parseArgs({
  options: {
    balls: { type: "string", default: "1000000" },
    catalog: { type: "string" },
    postgres: { type: "boolean", default: false },
    batch: { type: "string", default: "1000" },
    group: { type: "string", default: "16" },
    commits: { type: "string", default: "2000" },
    gets: { type: "string", default: "5000" },
    peers: { type: "string", default: "8" },
    keep: { type: "boolean", default: false },
  },
});
const balls = Number(values.balls);
const batch = Math.min(Number(values.batch), limits.listPageMax);
const groupSize = Number(values.group);
const commits = Number(values.commits);
const gets = Number(values.gets);
const peers = Number(values.peers);
if (!Number.isInteger(balls) || balls < 1000) throw new Error("--balls must be a whole number >= 1000");
if (values.catalog !== undefined && values.postgres) throw new Error("give --catalog URL or --postgres, not both");

const dirs = 100;
const bucket = "bench";
const pageSize = limits.listPageMax;
const inFlight = 8;
const keyOf = (i: number) => `d${String(i % dirs).padStart(2, "0")}/obj-${String(i).padStart(9, "0")}`;
const peerId = (p: number) => `peer-${p}`;

function peer(id: string): PeerRecord {
  return {
    id, address: `10.0.0.${id.length}:7210`, capacityBytes: 2 ** 40, usedBytes: 0, freeBytes: 2 ** 40, chunks: 0,
    state: "up", lastHeartbeatMs: Date.now(), registeredMs: Date.now(), draining: false,
  };
}

/** Ball i: 4 KiB, one chunk on two peers, in group i/10 (so ball groups of 10 can be listed). */
function item(i: number): CommitItem {
  const objectId = `obj-${i}-${Bun.hash.xxHash3(String(i)).toString(36)}`;
  const checksum = Bun.hash.xxHash3(objectId).toString(16).padStart(16, "0");
  return {
    ball: {
      bucket, key: keyOf(i), ballId: `group-${Math.floor(i / 10)}`, objectId, size: 4096,
      checksum: checksum.repeat(4), contentType: "application/octet-stream", tags: { fullname: keyOf(i), extension: "bin" },
      rf: 2, createdMs: Date.now(), chunkSize: 1 << 20, numChunks: 1,
    },
    chunks: [{ index: 0, size: 4096, checksum, peers: [peerId(i % peers), peerId((i + 1) % peers)] }],
  };
}

type Row = { what: string; n: number; p50?: number; p99?: number; totalMs: number; note?: string };
const rows: Row[] = [];

/** Run `fn` n times one after another; p50/p99 in ms. */
async function timeEach(what: string, n: number, fn: (i: number) => Promise<unknown>, note?: string): Promise<void> {
  const samples: number[] = [];
  for (let i = 0; i < n; i += 1) {
    const start = Bun.nanoseconds();
    await fn(i);
    samples.push((Bun.nanoseconds() - start) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
  rows.push({ what, n, p50: at(0.5), p99: at(0.99), totalMs: samples.reduce((a, b) => a + b, 0), ...(note ? { note } : {}) });
}

async function timeOnce<T>(what: string, fn: () => Promise<T>, note?: (result: T) => Promise<string>): Promise<T> {
  const start = Bun.nanoseconds();
  const result = await fn();
  const totalMs = (Bun.nanoseconds() - start) / 1e6;
  rows.push({ what, n: 1, totalMs, ...(note ? { note: await note(result) } : {}) });
  return result;
}

function failed(results: readonly unknown[]): void {
  for (const result of results) if (typeof result !== "object" || result === null || !("version" in result)) throw new Error(`a commit failed: ${JSON.stringify(result)}`);
}

/** Balls [from, to) in groups of `batch`-item commitBalls writes, 4 writes a group (one transaction). */
async function seed(store: CatalogStore, from: number, to: number): Promise<number> {
  const writesPerGroup = 4;
  const start = performance.now();
  let reported = start;
  for (let at = from; at < to; at += batch * writesPerGroup) {
    const writes: GroupWrite[] = [];
    for (let w = at; w < Math.min(to, at + batch * writesPerGroup); w += batch) {
      const items = Array.from({ length: Math.min(batch, to - w) }, (_, j) => item(w + j));
      writes.push((tx) => tx.commitBalls(items));
    }
    for (const outcome of await store.group(writes)) {
      if (!outcome.ok) throw outcome.error;
      failed(outcome.value as unknown[]);
    }
    if (performance.now() - reported > 10_000) {
      reported = performance.now();
      const done = Math.min(to, at + batch * writesPerGroup) - from;
      process.stderr.write(`  seeded ${done.toLocaleString()} / ${(to - from).toLocaleString()} (${Math.round(done / ((reported - start) / 1000))} balls/s)\n`);
    }
  }
  return (to - from) / ((performance.now() - start) / 1000);
}

type Rates = { commitsPerS: number; getsPerS: number; getsInFlightPerS: number };

/** Grouped commits of balls [from, from+commits), then gets of random keys among [getFrom, getTo). */
async function rates(store: CatalogStore, from: number, getFrom: number, getTo: number, random: () => number): Promise<Rates> {
  let start = performance.now();
  for (let at = from; at < from + commits; at += groupSize) {
    const writes: GroupWrite[] = Array.from({ length: Math.min(groupSize, from + commits - at) }, (_, j) => item(at + j)).map(({ ball, chunks }) => (tx) => tx.commitBall(ball, chunks));
    for (const outcome of await store.group(writes)) if (!outcome.ok) throw outcome.error;
  }
  const commitsPerS = commits / ((performance.now() - start) / 1000);
  const keys = Array.from({ length: gets }, () => keyOf(getFrom + Math.floor(random() * (getTo - getFrom))));
  start = performance.now();
  for (const key of keys) if ((await store.getBall(bucket, key)) === undefined) throw new Error(`lost ${key}`);
  const getsPerS = gets / ((performance.now() - start) / 1000);
  start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < keys.length) if ((await store.getBall(bucket, keys[next++]!)) === undefined) throw new Error("lost a ball");
    }),
  );
  return { commitsPerS, getsPerS, getsInFlightPerS: gets / ((performance.now() - start) / 1000) };
}

/** The whole bucket in pages of `pageSize`, in key order: keys/s. */
async function listAll(store: CatalogStore, expected: number): Promise<number> {
  const start = performance.now();
  let after: string | undefined;
  let seen = 0;
  for (;;) {
    const page = await store.listBalls({ bucket, limit: pageSize, ...(after === undefined ? {} : { after }) });
    seen += page.balls.length;
    if (page.next === undefined) break;
    after = page.next;
  }
  if (seen !== expected) throw new Error(`the listing gave ${seen} balls, the bucket holds ${expected}`);
  return seen / ((performance.now() - start) / 1000);
}

async function lookups(store: CatalogStore, random: () => number): Promise<void> {
  const pick = () => Math.floor(random() * balls);
  await timeEach("getBall (random key, hit)", 5_000, async () => {
    if ((await store.getBall(bucket, keyOf(pick()))) === undefined) throw new Error("missing ball");
  });
  await timeEach("getBall (miss)", 2_000, (i) => store.getBall(bucket, `nope/${i}`));
  await timeEach("listBalls 1000/page, random deep cursor", 200, async () => {
    if ((await store.listBalls({ bucket, after: keyOf(pick()), limit: 1000 })).balls.length === 0) throw new Error("empty page");
  });
  await timeEach("listBalls prefix d42/ 1000/page, deep cursor", 200, async () => {
    const i = pick();
    await store.listBalls({ bucket, prefix: "d42/", after: keyOf(i - (i % dirs) + 42), limit: 1000 });
  });
  await timeEach("listBalls by ballId (10 balls)", 2_000, () => store.listBalls({ bucket, ballId: `group-${Math.floor(pick() / 10)}`, limit: 100 }));
  await timeEach("findChunk (by objectId)", 2_000, async () => store.findChunk(item(pick()).ball.objectId, 0));
  await timeEach("stats()", 1_000, () => store.stats());
}

async function peerLoss(store: CatalogStore): Promise<void> {
  const lost = peerId(3);
  await timeOnce(`setPeerState(${lost}, down)`, () => store.setPeerState(lost, "down"), async () => `${await store.countUnderReplicated()} chunks now under-replicated`);
  await timeEach("countUnderReplicated() with a peer down", 1_000, () => store.countUnderReplicated());
  let after: string | undefined;
  await timeEach("underReplicated 1000/page, walking the list", 100, async () => {
    after = (await store.underReplicated({ limit: 1000, ...(after === undefined ? {} : { after }) })).next;
  });
  let onPeer: string | undefined;
  await timeEach("chunksOnPeer 1000/page, walking", 100, async () => {
    onPeer = (await store.chunksOnPeer(lost, { limit: 1000, ...(onPeer === undefined ? {} : { after: onPeer }) })).next;
  });
  await timeOnce(`setPeerState(${lost}, up)`, () => store.setPeerState(lost, "up"), async () => `${await store.countUnderReplicated()} under-replicated after`);
  await timeEach("upsertPeer (heartbeat, no state change)", 1_000, (i) => store.upsertPeer({ ...peer(peerId(0)), usedBytes: i }));
}

function fmt(ms: number | undefined): string {
  return ms === undefined ? "" : ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : ms > 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(2)} ms`;
}

function printRates(empty: Rates, full: Rates, seedPerS: number, listPerS: number): void {
  const line = (what: string, a: number, b: number, target: string) => console.log(`${what.padEnd(40)} ${a.toFixed(0).padStart(9)} ${b.toFixed(0).padStart(11)} ${`${((100 * b) / a).toFixed(0)} %`.padStart(7)}  ${target}`);
  console.log(`${"rate /s".padEnd(40)} ${"empty".padStart(9)} ${`at ${balls.toLocaleString()}`.padStart(11)} ${"ratio".padStart(7)}  target`);
  line(`commitBall in groups of ${groupSize}`, empty.commitsPerS, full.commitsPerS, "≥ 80 %");
  line("getBall one at a time", empty.getsPerS, full.getsPerS, "≥ 80 %");
  line(`getBall ${inFlight} in flight`, empty.getsInFlightPerS, full.getsInFlightPerS, "≥ 80 %");
  console.log(`seeding: commitBalls of ${batch} in groups of 4: ${seedPerS.toFixed(0)} balls/s`);
  console.log(`full listing of ${balls.toLocaleString()} keys in pages of ${pageSize}: ${listPerS.toFixed(0)} keys/s (target ≥ 100,000)`);
}

function printRows(): void {
  console.log(["\nlookups at N".padEnd(49), "n".padStart(8), "p50".padStart(10), "p99".padStart(10), "total".padStart(11), "  note"].join(""));
  for (const row of rows) {
    console.log([row.what.padEnd(48), String(row.n).padStart(8), fmt(row.p50).padStart(10), fmt(row.p99).padStart(10), fmt(row.totalMs).padStart(11), row.note ? `  ${row.note}` : ""].join(""));
  }
}

async function measure(store: CatalogStore): Promise<void> {
  const { seed: randomSeed } = seededRandom("catalog-scale");
  const random = mulberry32(randomSeed);
  console.log(`catalog scale on ${store.location} (${store.engine}): ${balls.toLocaleString()} balls, ${peers} peers (seed ${randomSeed})`);
  if ((await store.stats()).balls > 0) throw new Error(`${store.location} is not empty: give an empty catalog, so the empty-catalog rates are an empty catalog's`);
  for (let p = 0; p < peers; p += 1) await store.upsertPeer(peer(peerId(p)));
  // Ids: [0, N) seeded; the empty catalog's commits are N… and the full one's N+commits…
  const empty = await rates(store, balls, balls, balls + commits, random);
  process.stderr.write(`empty: ${JSON.stringify(empty)}\nseeding ${balls.toLocaleString()} balls…\n`);
  const seedStart = performance.now();
  const seedPerS = await seed(store, 0, balls);
  process.stderr.write(`seeded in ${((performance.now() - seedStart) / 1000).toFixed(0)} s\n`);
  const full = await rates(store, balls + commits, 0, balls, random);
  const listPerS = await listAll(store, balls + 2 * commits);
  printRates(empty, full, seedPerS, listPerS); // printed now: a lookup below that fails leaves these standing
  await lookups(store, random);
  await peerLoss(store);
  printRows();
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "mictlanx-catalog-scale-"));
  chmodSync(dir, 0o711);
  let server: TestPostgres | undefined;
  try {
    if (values.postgres) server = await startTestPostgres("scale");
    // Ctrl-C or a timeout's SIGTERM must not leave the throwaway server running.
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        void (server?.cleanup() ?? Promise.resolve()).finally(() => {
          rmSync(dir, { recursive: true, force: true });
          process.exit(130);
        });
      });
    }
    const url = server !== undefined ? await server.createDatabase() : (values.catalog ?? `sqlite:${dir}`);
    const store = await openCatalogStore(url, { secretsKeyPath: join(dir, "secrets.key") });
    try {
      await measure(store);
    } finally {
      await store.close();
    }
  } finally {
    if (!values.keep) {
      await server?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    } else console.log(`kept ${dir}${server ? ` and the PostgreSQL server in ${server.dir} (stopped)` : ""}`);
    if (values.keep) await server?.stop();
  }
}

await main();
