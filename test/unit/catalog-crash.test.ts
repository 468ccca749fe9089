import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { Catalog } from "../../src/catalog/index.ts";
import { seededRandom } from "../support/random.ts";
import { crashBall, tempCatalog } from "./fixtures/catalog-records.ts";

const child = join(import.meta.dir, "fixtures", "catalog-crash-child.ts");
const peers = ["p1", "p2", "p3"]; // as in the child
const keys = 37;

const temp = tempCatalog("crash");
temp.catalog.close();
afterAll(() => temp.done());

/** Run the child from op `first`; kill -9 it once `killAfter` acks were read. Returns every ack it printed. */
async function runAndKill(first: number, killAfter: number): Promise<number[]> {
  const proc = Bun.spawn([process.execPath, child, temp.path, String(keys), String(first)], { stdout: "pipe", stderr: "inherit" });
  const acks: number[] = [];
  let killed = false;
  let buffered = "";
  const decoder = new TextDecoder();
  for await (const bytes of proc.stdout) {
    buffered += decoder.decode(bytes, { stream: true });
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    for (const line of lines) if (line.startsWith("ack ")) acks.push(Number(line.slice(4)));
    if (!killed && acks.length >= killAfter) {
      process.kill(proc.pid, "SIGKILL");
      killed = true;
    }
  }
  expect(await proc.exited).not.toBe(0);
  expect(proc.signalCode).toBe("SIGKILL");
  return acks;
}

/** The last op at or before `last` that wrote `key`, or -1. */
function lastOpOn(key: number, last: number): number {
  return last < key ? -1 : last - ((last - key) % keys);
}

/**
 * Commits apply in order, so the catalog must hold exactly the state after ops 0..L for some
 * L >= the last acknowledged op (ops after it may have committed before the kill, unacked).
 * Every ball is compared whole: record, version, chunks and their peers.
 */
function verify(catalog: Catalog, lastAck: number): number {
  const stored = Array.from({ length: keys }, (_, key) => catalog.getBall("bucket", `key-${key}`));
  const last = Math.max(...stored.map((ball) => (ball === undefined ? -1 : Number(ball.tags.n))));
  expect(last).toBeGreaterThanOrEqual(lastAck);
  stored.forEach((ball, key) => {
    const n = lastOpOn(key, last);
    if (n < 0) return expect(ball).toBeUndefined();
    const { ball: want, chunks } = crashBall(n, keys, peers);
    expect(ball).toEqual({ ...want, version: Math.floor(n / keys) + 1, chunks });
  });
  expect(catalog.audit()).toEqual([]);
  expect(catalog.stats()).toMatchObject({ balls: Math.min(keys, last + 1), buckets: 1, underReplicated: 0 });
  return last;
}

test("kill -9 mid-way loses no acknowledged commit", async () => {
  const { random } = seededRandom("catalog-crash");
  let next = 0;
  for (let round = 0; round < 3; round += 1) {
    const acks = await runAndKill(next, 20 + Math.floor(random() * 200));
    expect(acks.length).toBeGreaterThan(0);
    expect(acks).toEqual(Array.from({ length: acks.length }, (_, i) => next + i));
    const catalog = Catalog.open(temp.path);
    try {
      const last = verify(catalog, acks.at(-1)!);
      console.log(`[catalog-crash] round ${round}: acks ${acks[0]}..${acks.at(-1)}, committed through ${last}`);
      next = last + 1;
    } finally {
      catalog.close();
    }
  }
}, 60_000);
