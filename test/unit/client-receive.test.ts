// The client's read path against a fake router (a real RpcServer on loopback): chunks of a
// whole-ball read are received straight into the result (CallOptions.into), and whatever way
// a chunk arrives — in place, inline, cached, refetched after damage — every byte returned is
// checked (xxh3 per chunk, sha256 of the whole) and the result is the caller's own copy.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RpcServer, type Handlers } from "../../src/net/server.ts";
import { routerOps } from "../../src/protocol/router.ts";
import type { BallMetaWire, ChunkRecordWire } from "../../src/protocol/ball.ts";
import { Client } from "../../src/client/client.ts";
import { chunkChecksum, checksumHex } from "../../src/lib/checksum.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import { rejection } from "../support/errors.ts";

const { random, seed } = seededRandom("client-receive");
const chunkSize = 100_000; // over the split threshold: chunks travel as split frames
const balls = new Map<string, { meta: BallMetaWire; chunks: ChunkRecordWire[]; pieces: Uint8Array[] }>();
/** Per key: chunk index → how many more times to serve it damaged. */
const damage = new Map<string, Map<number, number>>();
let getChunkCalls = 0;
let server: RpcServer<typeof routerOps>;

function addBall(key: string, data: Uint8Array, options: { wrongSha?: boolean } = {}): Uint8Array {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < data.byteLength; at += chunkSize) pieces.push(data.slice(at, Math.min(at + chunkSize, data.byteLength)));
  const chunks = pieces.map((piece, index) => ({ index, size: piece.byteLength, checksum: checksumHex(chunkChecksum(piece)), peers: ["p1"] }));
  const sha = new Bun.CryptoHasher("sha256").update(data).digest("hex");
  const objectId = `obj-${key.padEnd(8, "0")}`;
  const meta: BallMetaWire = {
    bucket: "b",
    key,
    ballId: key,
    objectId,
    version: 1,
    size: data.byteLength,
    checksum: options.wrongSha ? "0".repeat(64) : sha,
    contentType: "application/octet-stream",
    tags: {},
    rf: 1,
    createdMs: 1,
    chunkSize,
    numChunks: pieces.length,
  };
  balls.set(objectId, { meta, chunks, pieces });
  balls.set(key, { meta, chunks, pieces });
  return data;
}

beforeAll(() => {
  const handlers = {
    "ball.get": ({ key }: { key: string }) => {
      const ball = balls.get(key);
      if (!ball) throw new Error("no such ball");
      return { meta: ball.meta, chunks: ball.chunks, ...(ball.pieces.length === 1 ? { data: ball.pieces[0] } : {}) };
    },
    "ball.getChunk": ({ objectId, index }: { objectId: string; index: number }) => {
      getChunkCalls += 1;
      const ball = balls.get(objectId);
      const piece = ball?.pieces[index];
      if (!ball || !piece) throw new Error("no such chunk");
      const left = damage.get(ball.meta.key)?.get(index) ?? 0;
      let data = piece;
      if (left > 0) {
        damage.get(ball.meta.key)?.set(index, left - 1);
        data = piece.slice();
        data[data.byteLength >> 1] = (data[data.byteLength >> 1] ?? 0) ^ 0xff; // one flipped byte, same size
      }
      return { data, size: piece.byteLength, checksum: checksumHex(chunkChecksum(piece)) };
    },
  } as unknown as Handlers<typeof routerOps>;
  server = new RpcServer({ host: "127.0.0.1", port: 0, ops: routerOps, handlers });
  server.listen();
});
afterAll(() => server.stop());

const client = (cacheBytes = 0) => new Client({ routers: `127.0.0.1:${server.port}`, cacheBytes });

describe(`whole-ball reads (seed ${seed})`, () => {
  test("chunks land in place; the last, small one inline; the result is exact and a plain Uint8Array", async () => {
    const data = addBall("k1", randomBytes(random, 3 * chunkSize + 50_000));
    const c = client();
    const back = await c.get("b", "k1");
    expect(Buffer.isBuffer(back)).toBe(false);
    expect(back.byteLength).toBe(data.byteLength);
    expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true);
    const streamed: Uint8Array[] = [];
    const { stream } = await c.getStream("b", "k1");
    for await (const piece of stream) streamed.push(piece);
    expect(Buffer.concat(streamed).equals(Buffer.from(data))).toBe(true);
    c.close();
  });

  test("a chunk damaged on the way is fetched again into the same place; one damaged every time is a CorruptError", async () => {
    const data = addBall("k2", randomBytes(random, 4 * chunkSize));
    damage.set("k2", new Map([[1, 1], [3, 2]]));
    const c = client();
    const before = getChunkCalls;
    const back = await c.get("b", "k2");
    expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true);
    expect(getChunkCalls - before).toBe(4 + 1 + 2);
    damage.set("k2", new Map([[2, 99]]));
    const error = await rejection(c.get("b", "k2"));
    expect(error.code).toBe("corrupt");
    expect(error.message).toContain("chunk 2 failed its xxh3 checksum");
    c.close();
  });

  test("chunks that all check out but add up to the wrong sha256 are a CorruptError, never returned", async () => {
    addBall("k3", randomBytes(random, 2 * chunkSize + 1), { wrongSha: true });
    const c = client();
    const error = await rejection(c.get("b", "k3"));
    expect(error.code).toBe("corrupt");
    expect(error.message).toContain("sha256");
    c.close();
  });

  test("what get returns is the caller's own: changing it changes nothing cached", async () => {
    const data = addBall("k4", randomBytes(random, 2 * chunkSize + 7));
    const c = client(64 * 1024 * 1024);
    const first = await c.get("b", "k4");
    first.fill(0);
    const before = getChunkCalls;
    const second = await c.get("b", "k4"); // from the cache
    expect(getChunkCalls).toBe(before);
    expect(Buffer.from(second).equals(Buffer.from(data))).toBe(true);
    second.fill(1);
    expect(Buffer.from(await c.get("b", "k4")).equals(Buffer.from(data))).toBe(true);
    c.close();
  });
});
