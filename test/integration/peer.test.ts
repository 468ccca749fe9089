// The storage peer as a real process: chunks over the wire, kill -9 mid-load, torn tails,
// flipped bits, compaction, index rebuild, capacity, and bad input — the peer keeps serving.
import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, kill9, programCommand, startRole, tempDir } from "../support/vss.ts";
import { flipByteOnDisk } from "../support/corrupt.ts";
import { rejection } from "../support/errors.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { RpcConnection } from "../../src/net/connection.ts";
import { parseAddress } from "../../src/net/address.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import { chunkChecksum, checksumHex } from "../../src/lib/checksum.ts";
import { encodeFrame } from "../../src/protocol/frame.ts";
import { encodeBody } from "../../src/protocol/codec.ts";
import { limits } from "../../src/lib/limits.ts";
import type { RoleProcess } from "../../src/local/process.ts";
import { asSpm, tlsArgs } from "../support/security.ts";
import { clientTlsOptions } from "../../src/net/tls.ts";
import type { Socket } from "bun";

const { random, seed } = seededRandom("peer");
const pool = new RpcPool({ role: "peer", ...asSpm });
const started: RoleProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  pool.close();
  for (const role of started) kill9(role);
  await Promise.all(started.map((role) => role.exited));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function startPeer(dir: string, extra: string[] = [], port = "0") {
  const role = await startRole("peer", ["peer", "--port", port, "--data", dir, "--id", "p1", ...(await tlsArgs("peer", "p1")), ...extra], undefined, programCommand());
  started.push(role);
  return { role, peer: new ServiceClient(peerOps, pool, parseAddress(role.address)) };
}

const sum = (data: Uint8Array) => checksumHex(chunkChecksum(data));
const same = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

describe(`peer process (seed ${seed})`, () => {
  test("10k chunks of mixed sizes (0 B to 4 MiB) written concurrently read back byte-exact", async () => {
    const dir = tempDir("peer-10k");
    dirs.push(dir);
    const { peer } = await startPeer(dir);
    const sizes = Array.from({ length: 10_000 }, (_, i) => (i % 1000 === 0 ? 4 * 1024 * 1024 : i % 97 === 0 ? 0 : Math.floor(random() ** 4 * 256 * 1024)));
    const payloads = sizes.map((size) => randomBytes(random, size));
    let next = 0;
    const writer = async () => {
      while (next < payloads.length) {
        const index = next++;
        const data = payloads[index]!;
        await peer.call("chunk.put", { bucket: "b", ball: "ball", index, data, checksum: sum(data) });
      }
    };
    await Promise.all(Array.from({ length: 64 }, writer));
    let read = 0;
    const reader = async () => {
      while (read < payloads.length) {
        const index = read++;
        const reply = await peer.call("chunk.get", { bucket: "b", ball: "ball", index });
        if (!same(reply.data, payloads[index]!)) throw new Error(`chunk ${index} differs`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, reader));
    const health = await peer.call("peer.health", {});
    expect(health.chunks).toBe(10_000);
  }, 120_000);

  test("kill -9 during a write load: every acknowledged chunk reads back exact, nothing half there", async () => {
    const dir = tempDir("peer-kill");
    dirs.push(dir);
    const first = await startPeer(dir);
    const acknowledged = new Map<number, Uint8Array>();
    const attempted = new Map<number, Uint8Array>();
    let next = 0;
    let stop = false;
    const writer = async () => {
      while (!stop) {
        const index = next++;
        const data = randomBytes(random, Math.floor(random() * 300 * 1024));
        attempted.set(index, data);
        try {
          await first.peer.call("chunk.put", { bucket: "k", ball: "load", index, data, checksum: sum(data) });
          acknowledged.set(index, data);
        } catch {
          return; // the peer died under us
        }
      }
    };
    const writers = Promise.all(Array.from({ length: 16 }, writer));
    await Bun.sleep(1_500);
    kill9(first.role);
    stop = true;
    await writers;
    expect(acknowledged.size).toBeGreaterThan(50);
    const { peer } = await startPeer(dir);
    for (const [index, data] of acknowledged) expect(same((await peer.call("chunk.get", { bucket: "k", ball: "load", index })).data, data)).toBe(true);
    // A chunk that was not acknowledged is either absent or whole — never partial.
    let partial = 0;
    for (const [index, data] of attempted) {
      if (acknowledged.has(index)) continue;
      const reply = await peer.call("chunk.get", { bucket: "k", ball: "load", index }).catch((error) => error);
      if (reply?.code === "not_found") continue;
      if (!reply?.data || !same(reply.data, data)) partial += 1;
    }
    expect(partial).toBe(0);
  }, 60_000);

  test("a torn tail written by hand is dropped on start; earlier chunks intact, new writes work", async () => {
    const dir = tempDir("peer-torn");
    dirs.push(dir);
    const first = await startPeer(dir);
    const data = randomBytes(random, 50_000);
    await first.peer.call("chunk.put", { bucket: "t", ball: "x", index: 0, data, checksum: sum(data) });
    kill9(first.role);
    await first.role.exited;
    const shards = readdirSync(join(dir, "shards")).sort();
    const active = join(dir, "shards", shards[shards.length - 1]!);
    const sizeBefore = statSync(active).size;
    appendFileSync(active, randomBytes(random, 777)); // half a record's worth of garbage
    const { peer } = await startPeer(dir);
    expect(statSync(active).size).toBe(sizeBefore);
    expect(same((await peer.call("chunk.get", { bucket: "t", ball: "x", index: 0 })).data, data)).toBe(true);
    const more = randomBytes(random, 1234);
    await peer.call("chunk.put", { bucket: "t", ball: "x", index: 1, data: more, checksum: sum(more) });
    expect(same((await peer.call("chunk.get", { bucket: "t", ball: "x", index: 1 })).data, more)).toBe(true);
  });

  test("bytes flipped inside a shard: that read is `corrupt`, the others are fine", async () => {
    const dir = tempDir("peer-flip");
    dirs.push(dir);
    const { peer } = await startPeer(dir);
    const good = randomBytes(random, 100_000);
    const bad = randomBytes(random, 100_000);
    await peer.call("chunk.put", { bucket: "f", ball: "x", index: 0, data: good, checksum: sum(good) });
    await peer.call("chunk.put", { bucket: "f", ball: "x", index: 1, data: bad, checksum: sum(bad) });
    expect(flipByteOnDisk(dir, bad.subarray(5000, 5064))).toBe(true);
    const error = await rejection(peer.call("chunk.get", { bucket: "f", ball: "x", index: 1 }));
    expect(error.code).toBe("corrupt");
    expect(error.message).toContain("checksum");
    expect(same((await peer.call("chunk.get", { bucket: "f", ball: "x", index: 0 })).data, good)).toBe(true);
  });

  test("shards roll; half deleted; compaction keeps every live chunk exact and returns the space", async () => {
    const dir = tempDir("peer-compact");
    dirs.push(dir);
    const { peer } = await startPeer(dir, ["--shard-size", "1MiB", "--compaction-interval", "200ms"]);
    const payloads = Array.from({ length: 60 }, () => randomBytes(random, 100 * 1024));
    for (const [index, data] of payloads.entries()) await peer.call("chunk.put", { bucket: "c", ball: "x", index, data, checksum: sum(data) });
    const before = await peer.call("peer.health", {});
    expect(before.shards.filter((shard) => shard.state === "read_only").length).toBeGreaterThan(3);
    for (let index = 0; index < payloads.length; index += 2) await peer.call("chunk.delete", { bucket: "c", ball: "x", index });
    let after = before;
    for (let i = 0; i < 100 && after.usedBytes > before.usedBytes * 0.7; i += 1) {
      await Bun.sleep(100);
      after = await peer.call("peer.health", {});
    }
    expect(after.usedBytes).toBeLessThan(before.usedBytes * 0.7);
    for (const [index, data] of payloads.entries()) {
      if (index % 2 === 0) expect((await rejection(peer.call("chunk.get", { bucket: "c", ball: "x", index }))).code).toBe("not_found");
      else expect(same((await peer.call("chunk.get", { bucket: "c", ball: "x", index })).data, data)).toBe(true);
    }
  }, 60_000);

  test("index deleted: --rebuild-index restores it from the shards", async () => {
    const dir = tempDir("peer-rebuild");
    dirs.push(dir);
    const first = await startPeer(dir);
    const payloads = Array.from({ length: 200 }, () => randomBytes(random, Math.floor(random() * 20_000)));
    for (const [index, data] of payloads.entries()) await first.peer.call("chunk.put", { bucket: "r", ball: "x", index, data, checksum: sum(data) });
    await first.peer.call("chunk.delete", { bucket: "r", ball: "x", index: 7 });
    kill9(first.role);
    await first.role.exited;
    for (const suffix of ["", "-wal", "-shm"]) rmSync(join(dir, `index.sqlite${suffix}`), { force: true });
    const rebuilt = await cli(["peer", "--data", dir, "--rebuild-index"]);
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stdout).toContain("199 chunks");
    expect(existsSync(join(dir, "index.sqlite"))).toBe(true);
    const { peer } = await startPeer(dir);
    for (const [index, data] of payloads.entries()) {
      if (index === 7) expect((await rejection(peer.call("chunk.get", { bucket: "r", ball: "x", index }))).code).toBe("not_found");
      else expect(same((await peer.call("chunk.get", { bucket: "r", ball: "x", index })).data, data)).toBe(true);
    }
  });

  test("capacity reached: `full`, nothing half-written, earlier chunks fine", async () => {
    const dir = tempDir("peer-full");
    dirs.push(dir);
    const { peer } = await startPeer(dir, ["--capacity", "2MiB"]);
    const stored: Uint8Array[] = [];
    let error;
    for (let index = 0; index < 40 && !error; index += 1) {
      const data = randomBytes(random, 256 * 1024);
      error = await peer.call("chunk.put", { bucket: "cap", ball: "x", index, data, checksum: sum(data) }).then(
        () => void stored.push(data),
        (caught) => caught,
      );
    }
    expect(error?.code).toBe("full");
    expect(error?.message).toContain("full");
    const health = await peer.call("peer.health", {});
    expect(health.usedBytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    for (const [index, data] of stored.entries()) expect(same((await peer.call("chunk.get", { bucket: "cap", ball: "x", index })).data, data)).toBe(true);
    expect((await rejection(peer.call("chunk.get", { bucket: "cap", ball: "x", index: stored.length }))).code).toBe("not_found");
  });

  test("batch put and batch get of many small chunks in one request; range reads within a chunk", async () => {
    const dir = tempDir("peer-batch");
    dirs.push(dir);
    const { peer } = await startPeer(dir);
    const payloads = Array.from({ length: 500 }, () => randomBytes(random, Math.floor(random() * 8_000)));
    const items = payloads.map((data, index) => ({ bucket: "batch", ball: "many", index, data, checksum: sum(data) }));
    const put = await peer.call("chunk.putMany", { items });
    expect(put.results.map((result) => result.size)).toEqual(payloads.map((data) => data.byteLength));
    const got = await peer.call("chunk.getMany", { refs: [...items.map(({ bucket, ball, index }) => ({ bucket, ball, index })), { bucket: "batch", ball: "many", index: 9999 }] });
    got.results.slice(0, 500).forEach((result, index) => {
      expect(result.ok).toBe(true);
      if (result.ok) expect(same(result.data, payloads[index]!)).toBe(true);
    });
    expect(got.results[500]).toMatchObject({ ok: false, code: "not_found" });
    // Range reads: the bytes asked for, verified against the whole chunk's checksum first.
    const big = randomBytes(random, 100_000);
    await peer.call("chunk.put", { bucket: "batch", ball: "range", index: 0, data: big, checksum: sum(big) });
    const slice = await peer.call("chunk.get", { bucket: "batch", ball: "range", index: 0, offset: 40_000, length: 1234 });
    expect(same(slice.data, big.subarray(40_000, 41_234))).toBe(true);
    expect(slice.size).toBe(100_000);
    const tail = await peer.call("chunk.get", { bucket: "batch", ball: "range", index: 0, offset: 99_990 });
    expect(same(tail.data, big.subarray(99_990))).toBe(true);
    expect((await rejection(peer.call("chunk.get", { bucket: "batch", ball: "range", index: 0, offset: 99_000, length: 5_000 }))).code).toBe("bad_request");
    // A batch over the count limit is refused whole.
    const tooMany = Array.from({ length: limits.batchChunksMax + 1 }, (_, index) => ({ bucket: "batch", ball: "x", index, data: new Uint8Array(1) }));
    expect((await rejection(peer.call("chunk.putMany", { items: tooMany }))).code).toBe("bad_request");
  });

  test("malformed and oversized requests get typed errors; the peer keeps serving", async () => {
    const dir = tempDir("peer-bad");
    dirs.push(dir);
    const { role, peer } = await startPeer(dir);
    const connection = await RpcConnection.open(parseAddress(role.address), { role: "peer", ...asSpm });
    // Wrong shapes.
    expect((await rejection(connection.call("chunk.put", { bucket: "b", ball: "x", index: -1, data: new Uint8Array(1) }))).code).toBe("bad_request");
    expect((await rejection(connection.call("chunk.get", { bucket: "", ball: "x", index: 0 }))).code).toBe("bad_request");
    expect((await rejection(connection.call("chunk.get", { bucket: "b".repeat(limits.bucketNameBytesMax + 1), ball: "x", index: 0 }))).code).toBe("bad_request");
    expect((await rejection(connection.call("chunk.get", { bucket: "../../etc", ball: "passwd", index: 0 }))).code).toBe("not_found");
    expect((await rejection(connection.call("chunk.put", { bucket: "b", ball: "x", index: 0, data: new Uint8Array(3), checksum: "0000000000000000" }))).code).toBe("corrupt");
    expect((await rejection(connection.call("no.such.op", {}))).code).toBe("bad_request");
    // An oversized frame: typed error, that connection closes, the peer lives on.
    // Raw sockets over TLS (with the SPM-role test certificate): the bytes reach the frame decoder as written.
    const port = parseAddress(role.address).port;
    const rawTls = (onData: (data: Uint8Array) => void) =>
      new Promise<Socket>((resolve, reject) => {
        Bun.connect({ hostname: "127.0.0.1", port, tls: clientTlsOptions(asSpm.security.tls.current, "127.0.0.1"), socket: { handshake: (socket) => resolve(socket), data: (_s, data) => onData(data), error: (_s, error) => reject(error) } }).catch(reject);
      });
    const replies: unknown[] = [];
    const raw = await rawTls((data) => void replies.push(data));
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, limits.frameBytesMax + 1);
    raw.write(header);
    // Garbage that is not MessagePack on another connection.
    const raw2 = await rawTls(() => {});
    raw2.write(encodeFrame(new Uint8Array([0x92, 0x01]), limits.frameBytesMax));
    raw2.write(encodeFrame(encodeBody({ id: 1, op: "peer.health" }), limits.frameBytesMax));
    await Bun.sleep(200);
    expect(replies.length).toBeGreaterThan(0);
    const health = await peer.call("peer.health", {});
    expect(health.id).toBe("p1");
    connection.close();
    raw2.end();
  });
});
