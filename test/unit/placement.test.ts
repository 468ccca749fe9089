import { describe, expect, test } from "bun:test";
import { choosePeers, type Candidate } from "../../src/roles/spm/placement.ts";
import { seededRandom } from "../support/random.ts";
import { MictlanxError } from "../../src/lib/errors.ts";

const GiB = 1024 ** 3;
function peers(frees: number[]): Candidate[] {
  return frees.map((free, i) => ({ id: `p${i}`, address: `127.0.0.1:${7000 + i}`, freeBytes: free, capacityBytes: 100 * GiB, load: 0 }));
}

describe("choosePeers", () => {
  const { random, seed } = seededRandom("placement");

  test(`rf distinct peers, never an excluded one (seed ${seed})`, () => {
    const pool = peers([50 * GiB, 60 * GiB, 70 * GiB, 80 * GiB, 90 * GiB]);
    for (let i = 0; i < 1000; i += 1) {
      const chosen = choosePeers(pool, 3, new Set(["p2"]), random);
      expect(new Set(chosen.map((peer) => peer.id)).size).toBe(3);
      expect(chosen.map((peer) => peer.id)).not.toContain("p2");
    }
  });

  test("rf above the available peers is a typed error naming the numbers", () => {
    try {
      choosePeers(peers([GiB, GiB]), 3, new Set(), random);
      throw new Error("expected a throw");
    } catch (error) {
      expect(error).toBeInstanceOf(MictlanxError);
      expect((error as MictlanxError).code).toBe("insufficient_peers");
      expect((error as MictlanxError).message).toContain("only 2 are available");
    }
  });

  test("equal peers share the work evenly (load breaks ties)", () => {
    const pool = peers([90 * GiB, 90 * GiB, 90 * GiB]);
    const counts = new Map<string, number>();
    for (let i = 0; i < 300; i += 1) for (const peer of choosePeers(pool, 1, new Set(), random)) counts.set(peer.id, (counts.get(peer.id) ?? 0) + 1);
    for (const count of counts.values()) expect(count).toBeGreaterThan(80);
  });

  test("an empty peer gets most new placements", () => {
    const pool = peers([10 * GiB, 10 * GiB, 10 * GiB, 100 * GiB]);
    let toEmpty = 0;
    for (let i = 0; i < 400; i += 1) if (choosePeers(pool, 1, new Set(), random)[0]?.id === "p3") toEmpty += 1;
    expect(toEmpty).toBeGreaterThan(200);
  });

  test("a peer without room for the chunk is never chosen", () => {
    const pool = peers([100, 100 * GiB, 100 * GiB]);
    for (let i = 0; i < 200; i += 1) expect(choosePeers(pool, 2, new Set(), random, 1024).map((peer) => peer.id)).not.toContain("p0");
  });
});
