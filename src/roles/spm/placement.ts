// Placement: rf distinct peers per chunk, chosen by free space and load with "power of two
// choices" — draw two candidates weighted by free bytes and keep the better: clearly more free
// space in proportion wins; otherwise the less loaded (fewer recent placements and ops). Two
// random draws spread the chunks of a large ball over the pool, so reads can pull from many
// peers at once, while new data still leans to emptier peers.
import { assert } from "../../lib/assert.ts";
import { MictlanxError } from "../../lib/errors.ts";

export interface Candidate {
  id: string;
  address: string;
  freeBytes: number;
  capacityBytes: number;
  /** Recent placements plus request rate: lower is less busy. Bumped as chunks are placed. */
  load: number;
}

/** Free ratios closer than this count as equal, so load decides between them. */
const freeRatioTie = 0.01;

export function choosePeers(candidates: Candidate[], rf: number, exclude: ReadonlySet<string>, random: () => number, chunkBytes = 0): Candidate[] {
  const pool = candidates.filter((candidate) => !exclude.has(candidate.id) && candidate.freeBytes >= chunkBytes);
  if (pool.length < rf) {
    throw new MictlanxError(
      "insufficient_peers",
      `replication factor ${rf} needs ${rf} peers that are up with room, but only ${pool.length} are available; lower --rf or start more peers`,
    );
  }
  const chosen: Candidate[] = [];
  while (chosen.length < rf) {
    const first = drawWeighted(pool, random);
    const second = drawWeighted(pool, random);
    const pick = better(first, second);
    pick.load += 1;
    chosen.push(pick);
    pool.splice(pool.indexOf(pick), 1);
  }
  assert(new Set(chosen.map((peer) => peer.id)).size === rf, "placement chose a peer twice");
  return chosen;
}

function better(a: Candidate, b: Candidate): Candidate {
  const difference = freeRatio(a) - freeRatio(b);
  if (difference > freeRatioTie) return a;
  if (difference < -freeRatioTie) return b;
  return a.load <= b.load ? a : b;
}

function freeRatio(candidate: Candidate): number {
  return candidate.capacityBytes > 0 ? candidate.freeBytes / candidate.capacityBytes : 0;
}

function drawWeighted(pool: Candidate[], random: () => number): Candidate {
  const total = pool.reduce((sum, candidate) => sum + weight(candidate), 0);
  let target = random() * total;
  for (const candidate of pool) {
    target -= weight(candidate);
    if (target < 0) return candidate;
  }
  const last = pool[pool.length - 1];
  assert(last !== undefined, "drawWeighted on an empty pool");
  return last;
}

/** Weight by free bytes, with a floor so a nearly full peer is still possible but rare. */
function weight(candidate: Candidate): number {
  return Math.max(candidate.freeBytes, 1);
}
