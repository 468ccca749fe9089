// A full recount, on PostgreSQL, of what the catalog keeps incrementally (totals, bucket sums,
// live counts): src/catalog/audit.ts's recounts. O(catalog): for tests, an operator's check and
// the end of `catalog migrate`, never a hot path. Foreign keys need no check here: PostgreSQL
// enforces them on every statement.
import { all, type Db } from "./db.ts";

const recounts: Array<[string, string]> = [
  ["balls", "SELECT (SELECT count(*) FROM balls) - (SELECT balls FROM totals) AS off"],
  ["bytes", "SELECT (SELECT coalesce(sum(size), 0) FROM balls) - (SELECT bytes FROM totals) AS off"],
  ["buckets", "SELECT (SELECT count(*) FROM buckets) - (SELECT buckets FROM totals) AS off"],
  ["chunks", "SELECT (SELECT count(*) FROM chunks) - (SELECT chunks FROM totals) AS off"],
  ["replicas", "SELECT (SELECT count(*) FROM replicas) - (SELECT replicas FROM totals) AS off"],
  ["under", "SELECT (SELECT count(*) FROM chunks WHERE live < rf) - (SELECT under FROM totals) AS off"],
  ["garbage", "SELECT (SELECT count(*) FROM garbage) - (SELECT garbage FROM totals) AS off"],
  ["intents", "SELECT (SELECT count(*) FROM intents) - (SELECT intents FROM totals) AS off"],
  ["intent bytes", "SELECT (SELECT coalesce(sum(placed_bytes), 0) FROM intents) - (SELECT intent_bytes FROM totals) AS off"],
  [
    "intents' placed bytes",
    `SELECT count(*) AS off FROM intents AS i
       WHERE i.placed_bytes <> i.chunk_bytes * (SELECT count(*) FROM intent_placements AS p WHERE p.object_id = i.object_id)`,
  ],
  [
    "bucket sums",
    `SELECT count(*) AS off FROM buckets AS k WHERE k.balls <> (SELECT count(*) FROM balls WHERE bucket = k.name)
       OR k.bytes <> (SELECT coalesce(sum(size), 0) FROM balls WHERE bucket = k.name)`,
  ],
  [
    "live counts",
    `SELECT count(*) AS off FROM chunks AS c WHERE c.live <> (SELECT count(*) FROM replicas AS r JOIN peers AS p ON p.num = r.peer
       WHERE r.ball = c.ball AND r.idx = c.idx AND p.state <> 'down' AND p.draining = 0)`,
  ],
  ["chunks without replicas", "SELECT count(*) AS off FROM chunks AS c WHERE NOT EXISTS (SELECT 1 FROM replicas AS r WHERE r.ball = c.ball AND r.idx = c.idx)"],
  ["balls with missing chunks", "SELECT count(*) AS off FROM balls AS b WHERE b.num_chunks <> (SELECT count(*) FROM chunks WHERE ball = b.id)"],
];

export async function auditPostgresCatalog(db: Db): Promise<string[]> {
  const problems: string[] = [];
  await db`SET LOCAL enable_seqscan = on`; // a recount reads whole tables: the one place a seq scan is the plan wanted (store.ts)
  for (const [what, sql] of recounts) {
    const off = (await all<{ off: number }>(db.unsafe(sql)))[0]?.off ?? 0;
    if (off !== 0) problems.push(`${what}: off by ${off}`);
  }
  return problems;
}
