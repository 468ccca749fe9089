// The catalog at scale, by hand: `bun bench/catalog-scale.ts --balls 1000000 [--dir DIR] [--keep]`.
// Commits N small balls (rf 2, one chunk) in batches, then times the lookups and listings the
// SPM leans on: getBall, listBalls pages deep in a listing, underReplicated pages after a peer
// goes down, the peer's down/up transitions themselves, and single durable commits.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Catalog, type CommitItem, type PeerRecord } from "../src/catalog/index.ts";
import { mulberry32 } from "../test/support/random.ts";

type Args = { balls: number; dir?: string; keep: boolean; batch: number; peers: number };

function parseArgs(argv: string[]): Args {
  const args: Args = { balls: 100_000, keep: false, batch: 1000, peers: 8 };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    if (flag === "--keep") {
      args.keep = true;
      continue;
    }
    const value = argv[(i += 1)];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--balls") args.balls = Number(value);
    else if (flag === "--dir") args.dir = value;
    else if (flag === "--batch") args.batch = Number(value);
    else if (flag === "--peers") args.peers = Number(value);
    else throw new Error(`unknown flag ${flag}; use --balls N [--dir DIR] [--batch N] [--peers N] [--keep]`);
  }
  if (!Number.isInteger(args.balls) || args.balls < 1000) throw new Error("--balls must be a whole number >= 1000");
  return args;
}

const dirs = 100;
const keyOf = (i: number) => `d${String(i % dirs).padStart(2, "0")}/obj-${String(i).padStart(9, "0")}`;
const peerId = (p: number) => `peer-${p}`;

function peer(id: string): PeerRecord {
  return {
    id, address: `10.0.0.${id.length}:7210`, capacityBytes: 2 ** 40, usedBytes: 0, freeBytes: 2 ** 40, chunks: 0,
    state: "up", lastHeartbeatMs: Date.now(), registeredMs: Date.now(), draining: false,
  };
}

function item(i: number, peers: number, objectId = crypto.randomUUID()): CommitItem {
  const holders = [peerId(i % peers), peerId((i + 1) % peers)];
  const checksum = Bun.hash.xxHash3(objectId).toString(16).padStart(16, "0");
  return {
    ball: {
      bucket: "bench", key: keyOf(i), ballId: `group-${Math.floor(i / 10)}`, objectId, size: 4096,
      checksum: checksum.repeat(4), contentType: "application/octet-stream", tags: { fullname: keyOf(i), extension: "bin" },
      rf: 2, createdMs: Date.now(), chunkSize: 1 << 20, numChunks: 1,
    },
    chunks: [{ index: 0, size: 4096, checksum, peers: holders }],
  };
}

type Row = { what: string; n: number; p50?: number; p99?: number; total?: number; note?: string };
const rows: Row[] = [];

/** Run `fn` n times; record p50/p99 in ms. */
function timeEach(what: string, n: number, fn: (i: number) => unknown, note?: string): void {
  const samples: number[] = [];
  for (let i = 0; i < n; i += 1) {
    const start = Bun.nanoseconds();
    fn(i);
    samples.push((Bun.nanoseconds() - start) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
  rows.push({ what, n, p50: at(0.5), p99: at(0.99), total: samples.reduce((a, b) => a + b, 0), ...(note ? { note } : {}) });
}

function timeOnce<T>(what: string, fn: () => T, note?: (result: T) => string): T {
  const start = Bun.nanoseconds();
  const result = fn();
  const ms = (Bun.nanoseconds() - start) / 1e6;
  rows.push({ what, n: 1, total: ms, ...(note ? { note: note(result) } : {}) });
  return result;
}

function load(catalog: Catalog, args: Args): void {
  const start = Bun.nanoseconds();
  for (let from = 0; from < args.balls; from += args.batch) {
    const count = Math.min(args.batch, args.balls - from);
    const results = catalog.commitBalls(Array.from({ length: count }, (_, j) => item(from + j, args.peers)));
    for (const result of results) if (!("version" in result)) throw result;
    if ((from / args.batch) % 100 === 0) process.stderr.write(`\r  loaded ${from + count} / ${args.balls}`);
  }
  const seconds = (Bun.nanoseconds() - start) / 1e9;
  process.stderr.write("\n");
  rows.push({ what: `load: commitBalls, batches of ${args.batch}`, n: args.balls, total: seconds * 1000, note: `${Math.round(args.balls / seconds)} balls/s` });
}

function lookups(catalog: Catalog, args: Args, random: () => number): void {
  const pick = () => Math.floor(random() * args.balls);
  timeEach("getBall (random key, hit)", 20_000, () => {
    if (catalog.getBall("bench", keyOf(pick())) === undefined) throw new Error("missing ball");
  });
  timeEach("getBall (miss)", 5_000, (i) => catalog.getBall("bench", `nope/${i}`));
  // Cursors deep in the listing: pages start at a random existing key.
  timeEach("listBalls 1000/page, random deep cursor", 300, () => {
    const page = catalog.listBalls({ bucket: "bench", after: keyOf(pick()), limit: 1000 });
    if (page.balls.length === 0) throw new Error("empty page");
  });
  timeEach("listBalls 100/page, random deep cursor", 1000, () => catalog.listBalls({ bucket: "bench", after: keyOf(pick()), limit: 100 }));
  timeEach("listBalls prefix d42/ 1000/page, deep cursor", 300, () => {
    const i = pick();
    const after = keyOf(i - (i % dirs) + 42);
    catalog.listBalls({ bucket: "bench", prefix: "d42/", after, limit: 1000 });
  });
  timeEach("listBalls by ballId (10 balls)", 5_000, () => catalog.listBalls({ bucket: "bench", ballId: `group-${Math.floor(pick() / 10)}`, limit: 100 }));
  timeEach("findChunk (by objectId)", 5_000, () => {
    const ball = catalog.getBall("bench", keyOf(pick()))!;
    catalog.findChunk(ball.objectId, 0);
  }, "includes a getBall");
  timeEach("listBuckets", 1000, () => catalog.listBuckets({ limit: 100 }));
  timeEach("stats() / countUnderReplicated()", 10_000, () => catalog.stats());
}

function peerLoss(catalog: Catalog, args: Args): void {
  const lost = peerId(3);
  timeOnce(`setPeerState(${lost}, down)`, () => catalog.setPeerState(lost, "down"), () => `${catalog.countUnderReplicated()} chunks now under-replicated`);
  timeEach("countUnderReplicated() with a peer down", 10_000, () => catalog.countUnderReplicated());
  let after: string | undefined;
  let pages = 0;
  timeEach("underReplicated 1000/page, walking the list", 100, () => {
    const page = catalog.underReplicated({ limit: 1000, ...(after === undefined ? {} : { after }) });
    after = page.next;
    pages += 1;
  });
  let onPeer: string | undefined;
  timeEach("chunksOnPeer 1000/page, walking", 100, () => {
    const page = catalog.chunksOnPeer(lost, { limit: 1000, ...(onPeer === undefined ? {} : { after: onPeer }) });
    onPeer = page.next;
  });
  timeOnce(`setPeerState(${lost}, up)`, () => catalog.setPeerState(lost, "up"), () => `${catalog.countUnderReplicated()} under-replicated after`);
  timeEach("upsertPeer (heartbeat, no state change)", 5_000, (i) => catalog.upsertPeer({ ...peer(peerId(0)), usedBytes: i }));
  void args;
}

function writes(catalog: Catalog, args: Args): void {
  timeEach("commitBall, new key (own txn, fsync)", 1000, (i) => {
    const { ball, chunks } = item(args.balls + i, args.peers);
    catalog.commitBall(ball, chunks, {});
  });
  timeEach("commitBall, overwrite (own txn, fsync)", 1000, (i) => {
    const { ball, chunks } = item(i * 997, args.peers);
    catalog.commitBall(ball, chunks, {});
  });
  timeEach("deleteBall (own txn, fsync)", 1000, (i) => catalog.deleteBall("bench", keyOf(args.balls + i)));
}

function print(args: Args, path: string): void {
  const size = (file: string) => {
    try {
      return statSync(file).size;
    } catch {
      return 0;
    }
  };
  const bytes = size(path) + size(`${path}-wal`);
  const fmt = (ms: number | undefined) => (ms === undefined ? "" : ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`);
  console.log(`\ncatalog scale: ${args.balls.toLocaleString()} balls, ${args.peers} peers, file ${(bytes / 2 ** 20).toFixed(0)} MiB (${(bytes / args.balls).toFixed(0)} B/ball)`);
  console.log(["what".padEnd(48), "n".padStart(8), "p50".padStart(10), "p99".padStart(10), "total".padStart(11), "  note"].join(""));
  for (const row of rows) {
    console.log([
      row.what.padEnd(48), String(row.n).padStart(8), fmt(row.p50).padStart(10), fmt(row.p99).padStart(10),
      (row.total === undefined ? "" : row.total > 10_000 ? `${(row.total / 1000).toFixed(1)} s` : fmt(row.total)).padStart(11),
      row.note ? `  ${row.note}` : "",
    ].join(""));
  }
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const dir = args.dir ?? mkdtempSync(join(tmpdir(), "mictlanx-catalog-bench-"));
  const path = join(dir, "catalog.sqlite");
  console.log(`catalog bench in ${path}`);
  const catalog = Catalog.open(path);
  for (let p = 0; p < args.peers; p += 1) catalog.upsertPeer(peer(peerId(p)));
  const random = mulberry32(42);
  try {
    if (catalog.stats().balls < args.balls) load(catalog, args);
    lookups(catalog, args, random);
    peerLoss(catalog, args);
    writes(catalog, args);
    print(args, path);
  } finally {
    catalog.close();
    if (!args.keep && args.dir === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

main();
