// A child process committing balls is killed -9 at a random point, three times over, on each
// engine: every commit it acknowledged is there afterwards, whole, and nothing half-written is.
import { expect, test } from "bun:test";
import { join } from "node:path";
import type { CatalogStore } from "../../src/catalog/index.ts";
import { seededRandom } from "../support/random.ts";
import { forEachEngine } from "../support/catalog-engines.ts";
import { crashBall } from "./fixtures/catalog-records.ts";

const child = join(import.meta.dir, "fixtures", "catalog-crash-child.ts");
const peers = ["p1", "p2", "p3"]; // as in the child
const keys = 37;

/** Run the child on `url` from op `first`; kill -9 it once `killAfter` acks were read. Returns every ack it printed. */
async function runAndKill(url: string, secretsKeyPath: string, first: number, killAfter: number): Promise<number[]> {
  const proc = Bun.spawn([process.execPath, child, url, secretsKeyPath, String(keys), String(first)], { stdout: "pipe", stderr: "inherit" });
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
async function verify(catalog: CatalogStore, lastAck: number): Promise<number> {
  const stored = await Promise.all(Array.from({ length: keys }, (_, key) => catalog.getBall("bucket", `key-${key}`)));
  const last = Math.max(...stored.map((ball) => (ball === undefined ? -1 : Number(ball.tags.n))));
  expect(last).toBeGreaterThanOrEqual(lastAck);
  stored.forEach((ball, key) => {
    const n = lastOpOn(key, last);
    if (n < 0) return expect(ball).toBeUndefined();
    const { ball: want, chunks } = crashBall(n, keys, peers);
    expect(ball).toEqual({ ...want, version: Math.floor(n / keys) + 1, chunks });
  });
  expect(await catalog.audit()).toEqual([]);
  expect(await catalog.stats()).toMatchObject({ balls: Math.min(keys, last + 1), buckets: 1, underReplicated: 0 });
  return last;
}

forEachEngine("catalog-crash", (engine) => {
  test("kill -9 mid-way loses no acknowledged commit", async () => {
    const { random } = seededRandom(`catalog-crash-${engine.name}`);
    const opened = await engine.open();
    await opened.store.close();
    const url = engine.name === "sqlite" ? `sqlite:${opened.dir}` : opened.location;
    const secretsKeyPath = join(opened.dir, "secrets.key");
    let next = 0;
    for (let round = 0; round < 3; round += 1) {
      const acks = await runAndKill(url, secretsKeyPath, next, 20 + Math.floor(random() * 200));
      expect(acks.length).toBeGreaterThan(0);
      expect(acks).toEqual(Array.from({ length: acks.length }, (_, i) => next + i));
      const catalog = await opened.reopen();
      try {
        const last = await verify(catalog, acks.at(-1)!);
        console.log(`[catalog-crash ${engine.name}] round ${round}: acks ${acks[0]}..${acks.at(-1)}, committed through ${last}`);
        next = last + 1;
      } finally {
        await catalog.close();
      }
    }
  }, 60_000);
});
