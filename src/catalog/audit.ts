// A full recount of what the catalog keeps incrementally (totals, bucket sums, live counts).
// O(catalog): for tests and for an operator's fsck, never for a hot path.
import type { Database } from "bun:sqlite";

const recounts: Array<[string, string]> = [
  ["balls", "SELECT (SELECT count(*) FROM balls) - (SELECT balls FROM totals)"],
  ["bytes", "SELECT (SELECT coalesce(sum(size), 0) FROM balls) - (SELECT bytes FROM totals)"],
  ["buckets", "SELECT (SELECT count(*) FROM buckets) - (SELECT buckets FROM totals)"],
  ["chunks", "SELECT (SELECT count(*) FROM chunks) - (SELECT chunks FROM totals)"],
  ["replicas", "SELECT (SELECT count(*) FROM replicas) - (SELECT replicas FROM totals)"],
  ["under", "SELECT (SELECT count(*) FROM chunks WHERE live < rf) - (SELECT under FROM totals)"],
  ["garbage", "SELECT (SELECT count(*) FROM garbage) - (SELECT garbage FROM totals)"],
  ["intents", "SELECT (SELECT count(*) FROM intents) - (SELECT intents FROM totals)"],
  ["intent bytes", "SELECT (SELECT coalesce(sum(placed_bytes), 0) FROM intents) - (SELECT intent_bytes FROM totals)"],
  [
    "intents' placed bytes",
    `SELECT count(*) FROM intents AS i
       WHERE i.placed_bytes <> i.chunk_bytes * (SELECT count(*) FROM intent_placements AS p WHERE p.object_id = i.object_id)`,
  ],
  [
    "bucket sums",
    `SELECT count(*) FROM buckets AS k WHERE k.balls <> (SELECT count(*) FROM balls WHERE bucket = k.name)
       OR k.bytes <> (SELECT coalesce(sum(size), 0) FROM balls WHERE bucket = k.name)`,
  ],
  [
    "live counts",
    `SELECT count(*) FROM chunks AS c WHERE c.live <> (SELECT count(*) FROM replicas AS r JOIN peers AS p ON p.num = r.peer
       WHERE r.ball = c.ball AND r.idx = c.idx AND p.state <> 'down' AND p.draining = 0)`,
  ],
  ["chunks without replicas", "SELECT count(*) FROM chunks AS c WHERE NOT EXISTS (SELECT 1 FROM replicas AS r WHERE r.ball = c.ball AND r.idx = c.idx)"],
  ["balls with missing chunks", "SELECT count(*) FROM balls AS b WHERE b.num_chunks <> (SELECT count(*) FROM chunks WHERE ball = b.id)"],
];

export function auditCatalog(db: Database): string[] {
  const problems: string[] = [];
  for (const [what, sql] of recounts) {
    const row = db.query<Record<string, number>, []>(sql).values()[0];
    const off = Number(row?.[0] ?? 0);
    if (off !== 0) problems.push(`${what}: off by ${off}`);
  }
  const integrity = db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").get()?.integrity_check;
  if (integrity !== "ok") problems.push(`integrity_check: ${integrity}`);
  const foreign = db.query("PRAGMA foreign_key_check").all();
  if (foreign.length > 0) problems.push(`foreign_key_check: ${foreign.length} rows`);
  return problems;
}
