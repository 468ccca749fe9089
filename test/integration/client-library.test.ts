// The client library against a VSS of real processes: every kind of source, metadata and tags,
// encryption (round trip, wrong key, no key, nothing readable on disk), compression, the chunk
// cache (hits counted on the router's own metrics, never stale after an overwrite), putMany and
// getMany, ball groups, getToFile's partial files, and sha256 / decompression checks against
// balls written wrong on purpose.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client, DecryptError, KeyRequiredError, type PutItem } from "../../src/client/index.ts";
import { RouterSet } from "../../src/client/routers.ts";
import { chunkChecksum, checksumHex } from "../../src/lib/checksum.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, startTestVss, tempDir } from "../support/vss.ts";
import { rejection } from "../support/errors.ts";
import { parsePrometheus, total } from "../support/prometheus.ts";
import { asAdmin, testCredentials } from "../support/security.ts";

const { random, seed } = seededRandom("client-library");
const KiB = 1024;
const MiB = 1024 * KiB;
let vss: Awaited<ReturnType<typeof startTestVss>>;
let router: string;
let plain: Client;
const key = randomBytes(random, 32);
const files = tempDir("client-library-files");
const clients: Client[] = [];

function client(options: Partial<ConstructorParameters<typeof Client>[0]> = {}): Client {
  const made = new Client({ ...testCredentials, routers: router, ...options });
  clients.push(made);
  return made;
}

beforeAll(async () => {
  vss = await startTestVss({ label: "client-library", peers: 3, routers: 1 });
  router = vss.routers[0]!.address;
  plain = client({ chunkSize: 256 * KiB });
});

afterAll(async () => {
  for (const made of clients) made.close();
  await vss?.cleanup();
  if (!process.env.MICTLANX_KEEP) rmSync(files, { recursive: true, force: true });
});

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

const sha256 = (data: Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");

/** Whether `needle` appears in any file under a peer's data directory (read only). */
function onAnyPeerDisk(needle: Uint8Array): boolean {
  const search = Buffer.from(needle);
  const walk = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return walk(path);
      return entry.isFile() && readFileSync(path).indexOf(search) >= 0;
    });
  return vss.peers.some((peer) => walk(peer.data));
}

/** Requests and bytes the router has served, from its Prometheus metrics. */
async function routerCounters() {
  const url = vss.routers[0]!.metricsUrl;
  expect(url).toBeDefined();
  const samples = parsePrometheus(await (await fetch(url!)).text());
  return {
    get: total(samples, "mictlanx_router_requests_total", { op: "ball.get" }),
    getChunk: total(samples, "mictlanx_router_requests_total", { op: "ball.getChunk" }),
    bytesOut: total(samples, "mictlanx_router_bytes_total", { direction: "out" }),
  };
}

async function delta<T>(work: () => Promise<T>): Promise<{ value: T; get: number; getChunk: number; bytesOut: number }> {
  const before = await routerCounters();
  const value = await work();
  const after = await routerCounters();
  return { value, get: after.get - before.get, getChunk: after.getChunk - before.getChunk, bytesOut: after.bytesOut - before.bytesOut };
}

describe(`sources, metadata, tags (seed ${seed})`, () => {
  test("bytes, Blob, Bun.file, a file path, a ReadableStream and an async iterable all store the same bytes", async () => {
    const data = randomBytes(random, 700 * KiB + 3);
    const path = join(files, "source.csv");
    writeFileSync(path, data);
    const stream = () =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < data.byteLength; at += 10_000) controller.enqueue(data.slice(at, at + 10_000));
          controller.close();
        },
      });
    async function* iterable() {
      for (let at = 0; at < data.byteLength; at += 77_777) yield data.slice(at, at + 77_777);
    }
    const sources: Array<[string, Parameters<Client["put"]>[2]]> = [
      ["bytes", data],
      ["blob", new Blob([data])],
      ["bunfile", Bun.file(path)],
      ["path", path],
      ["stream", stream()],
      ["iterable", iterable()],
    ];
    for (const [name, source] of sources) {
      const put = await plain.put("sources", name, source);
      expect(put).toMatchObject({ size: data.byteLength, numChunks: 3, checksum: sha256(data), storedBytes: data.byteLength, compressed: false, encrypted: false });
      expect(same(await plain.get("sources", name), data)).toBe(true);
    }
    // A path string names a file; a missing one is a clear error, not an empty ball.
    const missing = await rejection(plain.put("sources", "missing", join(files, "nope.bin")));
    expect(missing.message).toContain("no such file");
  });

  test("metadata: size, content type from the extension unless given, system and user tags, ball id", async () => {
    const data = randomBytes(random, 600 * KiB);
    await plain.put("meta", "reports/2024/q1.json", data, { tags: { team: "storage" }, ballId: "reports-2024" });
    const stat = await plain.stat("meta", "reports/2024/q1.json");
    expect(stat).toMatchObject({ size: data.byteLength, checksum: sha256(data), contentType: "application/json", ballId: "reports-2024", numChunks: 3, chunkSize: 256 * KiB });
    expect(stat.tags).toEqual({ team: "storage", fullname: "q1.json", extension: "json", num_chunks: "3", full_checksum: sha256(data) });
    await plain.put("meta", "raw", data, { contentType: "application/x-thing" });
    expect((await plain.stat("meta", "raw")).contentType).toBe("application/x-thing");
    const fromFile = join(files, "photo.png");
    writeFileSync(fromFile, data.subarray(0, 10));
    await plain.put("meta", "photo", fromFile); // the key has no extension: the file's
    expect((await plain.stat("meta", "photo")).contentType).toBe("image/png");
    for (const reserved of ["full_checksum", "compression", "encryption"]) {
      const error = await rejection(plain.put("meta", "x", data, { tags: { [reserved]: "1" } }));
      expect(error.code).toBe("bad_request");
      expect(error.message).toContain(`tag "${reserved}" is set by the client`);
    }
  });

  test("an aborted put commits nothing and closes its source", async () => {
    const abort = new AbortController();
    let cancelled = false;
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        controller.enqueue(randomBytes(random, 64 * KiB));
      },
      cancel() {
        cancelled = true;
      },
    });
    const put = plain.put("sources", "aborted", endless, { signal: abort.signal, onProgress: (done) => done >= MiB && abort.abort(new Error("enough")) });
    expect(((await put.catch((error: Error) => error)) as Error).message).toBe("enough");
    expect(cancelled).toBe(true);
    expect(pulled).toBeLessThan(200); // it stopped reading
    expect((await rejection(plain.stat("sources", "aborted"))).code).toBe("not_found");
  });

  test("sizes at chunk edges and the empty ball", async () => {
    for (const size of [0, 1, 256 * KiB - 1, 256 * KiB, 256 * KiB + 1, 1 * MiB]) {
      const data = randomBytes(random, size);
      const put = await plain.put("edges", `s${size}`, data);
      expect(put.numChunks).toBe(Math.ceil(size / (256 * KiB)));
      expect(same(await plain.get("edges", `s${size}`), data)).toBe(true);
    }
  });
});

describe("encryption", () => {
  test("round trip with the key; the metadata says encrypted and never holds the key; no plaintext on any disk", async () => {
    const sealed = client({ key, chunkSize: 256 * KiB });
    for (const size of [0, 5, 256 * KiB, 900 * KiB]) {
      const data = randomBytes(random, size);
      const put = await sealed.put("secret", `s${size}`, data);
      expect(put.encrypted).toBe(true);
      expect(put.storedBytes).toBe(size + put.numChunks * 28);
      // Another client with the same key reads it (nothing comes from the first one's cache).
      const reader = client({ key, cacheBytes: 0 });
      expect(same(await reader.get("secret", `s${size}`), data)).toBe(true);
      const stat = await reader.stat("secret", `s${size}`);
      expect(stat.tags.encryption).toBe("aes-256-gcm");
      expect(stat.checksum).toBe(put.checksum); // of the sealed chunks, as the put said
      if (size > 0) expect(stat.checksum).not.toBe(sha256(data)); // (an empty ball has no chunks: the sha256 of nothing either way)
      expect(JSON.stringify(stat)).not.toContain(Buffer.from(key).toString("hex"));
      for (const chunk of stat.chunks) expect(chunk.size).toBeLessThanOrEqual(256 * KiB + 28);
      if (size >= 256 * KiB) expect(onAnyPeerDisk(data.subarray(1000, 1064))).toBe(false);
    }
    // The control: an unencrypted ball's bytes are found on disk by the same search.
    const open = randomBytes(random, 300 * KiB);
    await plain.put("secret", "open", open);
    expect(onAnyPeerDisk(open.subarray(1000, 1064))).toBe(true);
  });

  test("wrong key: a clear typed error naming the chunk; no key: says a key is needed", async () => {
    const sealed = client({ key, chunkSize: 256 * KiB });
    await sealed.put("secret", "ball", randomBytes(random, 600 * KiB));
    const wrong = client({ key: randomBytes(random, 32) });
    const error = await rejection(wrong.get("secret", "ball"));
    expect(error).toBeInstanceOf(DecryptError);
    expect(error.code).toBe("corrupt");
    expect(error.message).toBe("cannot decrypt chunk 0 of secret/ball: wrong key or the chunk was altered");
    const keyless = await rejection(plain.get("secret", "ball"));
    expect(keyless).toBeInstanceOf(KeyRequiredError);
    expect(keyless.message).toContain("secret/ball is encrypted (aes-256-gcm); give the key");
    // A key is checked when the client is made.
    expect(() => new Client({ ...testCredentials, routers: router, key: new Uint8Array(31) })).toThrow("32 bytes");
  });
});

describe("compression", () => {
  test("compressible data is stored smaller, read back exact, tagged compression=zstd", async () => {
    const text = new TextEncoder().encode(Array.from({ length: 60_000 }, (_, i) => `${i % 1000},sensor-${i % 7},${(i * 31) % 997}\n`).join(""));
    const zipped = client({ compress: true, chunkSize: 256 * KiB });
    const put = await zipped.put("zip", "log.csv", text);
    expect(put.compressed).toBe(true);
    expect(put.storedBytes).toBeLessThan(text.byteLength / 3);
    const stat = await plain.stat("zip", "log.csv");
    expect(stat.tags).toMatchObject({ compression: "zstd", full_checksum: sha256(text), num_chunks: String(put.numChunks) });
    expect(stat.size).toBe(text.byteLength);
    expect(stat.chunks.reduce((sum, chunk) => sum + chunk.size, 0)).toBe(put.storedBytes);
    // Any client reads it; compression needs no option to read.
    expect(same(await client({ cacheBytes: 0 }).get("zip", "log.csv"), text)).toBe(true);
  });

  test("per put, with encryption, and incompressible data", async () => {
    const both = client({ key, chunkSize: 128 * KiB });
    const text = new TextEncoder().encode("abcdefgh".repeat(100_000));
    const put = await both.put("zip", "both.txt", text, { compress: true });
    expect(put).toMatchObject({ compressed: true, encrypted: true });
    expect((await plain.stat("zip", "both.txt")).tags).toMatchObject({ compression: "zstd", encryption: "aes-256-gcm" });
    expect(same(await client({ key, cacheBytes: 0 }).get("zip", "both.txt"), text)).toBe(true);
    const noise = randomBytes(random, 300 * KiB);
    const stored = await plain.put("zip", "noise", noise, { compress: true });
    expect(stored.storedBytes).toBe(noise.byteLength + stored.numChunks); // one marker byte per chunk, kept as is
    expect(same(await client({ cacheBytes: 0 }).get("zip", "noise"), noise)).toBe(true);
  });
});

describe("the chunk cache", () => {
  test("a cached ball costs only the metadata request: no chunk fetched, no bytes sent", async () => {
    const reader = client({ chunkSize: 256 * KiB });
    const many = randomBytes(random, MiB + 5); // 5 chunks
    const one = randomBytes(random, 100 * KiB); // 1 chunk, sent inline with the metadata unless cached
    await plain.put("cache", "many", many);
    await plain.put("cache", "one", one);

    const first = await delta(() => reader.get("cache", "many"));
    expect(same(first.value, many)).toBe(true);
    expect(first.get).toBe(1);
    expect(first.getChunk).toBe(5);
    expect(first.bytesOut).toBe(many.byteLength);
    const second = await delta(() => reader.get("cache", "many"));
    expect(same(second.value, many)).toBe(true);
    expect(second).toMatchObject({ get: 1, getChunk: 0, bytesOut: 0 });

    const inline = await delta(() => reader.get("cache", "one"));
    expect(inline).toMatchObject({ get: 1, getChunk: 0, bytesOut: one.byteLength });
    const cachedOne = await delta(() => reader.get("cache", "one"));
    expect(same(cachedOne.value, one)).toBe(true);
    expect(cachedOne).toMatchObject({ get: 1, getChunk: 0, bytesOut: 0 });
    expect(reader.stats().cache.hits).toBeGreaterThanOrEqual(6);

    // What a put wrote is cached too (write-through): the writer's next get fetches nothing.
    const writer = client({ chunkSize: 256 * KiB });
    const fresh = randomBytes(random, 600 * KiB);
    await writer.put("cache", "fresh", fresh);
    const afterPut = await delta(() => writer.get("cache", "fresh"));
    expect(same(afterPut.value, fresh)).toBe(true);
    expect(afterPut).toMatchObject({ get: 1, getChunk: 0, bytesOut: 0 });

    // The caller owns what it gets: changing it does not change the cache.
    const mine = await reader.get("cache", "many");
    mine.fill(0);
    expect(same(await reader.get("cache", "many"), many)).toBe(true);
  });

  test("never stale: an overwrite by another client is read at once, and a delete is seen", async () => {
    const reader = client({ chunkSize: 256 * KiB });
    const other = client({ chunkSize: 256 * KiB });
    for (const [name, size] of [["multi", 700 * KiB], ["single", 10 * KiB]] as const) {
      const v1 = randomBytes(random, size);
      await other.put("stale", name, v1);
      expect(same(await reader.get("stale", name), v1)).toBe(true);
      expect(same(await reader.get("stale", name), v1)).toBe(true); // now from the cache
      const v2 = randomBytes(random, size);
      await other.put("stale", name, v2);
      const read = await delta(() => reader.get("stale", name));
      expect(same(read.value, v2)).toBe(true);
      expect(read.bytesOut).toBe(size);
      // The same size, the same first bytes: still the new version.
      const v3 = v2.slice();
      v3[v3.byteLength - 1] = (v3[v3.byteLength - 1] ?? 0) ^ 1;
      await other.put("stale", name, v3);
      expect(same(await reader.get("stale", name), v3)).toBe(true);
      await other.delete("stale", name);
      expect((await rejection(reader.get("stale", name))).code).toBe("not_found");
    }
  });

  test("cacheBytes: 0 turns it off; balls over a quarter of the cache are not kept", async () => {
    const data = randomBytes(random, 600 * KiB);
    await plain.put("cache", "off", data);
    const off = client({ cacheBytes: 0 });
    await off.get("cache", "off");
    expect((await delta(() => off.get("cache", "off"))).getChunk).toBe(3); // 600 KiB in 256 KiB chunks
    const small = client({ cacheBytes: 1 * MiB }); // 600 KiB > 1 MiB / 4
    await small.get("cache", "off");
    expect((await delta(() => small.get("cache", "off"))).getChunk).toBe(3);
    expect(small.stats().cache.bytes).toBe(0);
  });
});

describe("many at once", () => {
  test("putMany and getMany: per-item outcomes in input order, typed errors, bounded concurrency", async () => {
    const data = Array.from({ length: 24 }, (_, i) => randomBytes(random, Math.floor(random() * 300 * KiB) + i));
    let pulled = 0;
    async function* items(): AsyncGenerator<PutItem> {
      for (let i = 0; i < data.length; i += 1) {
        pulled += 1;
        yield { bucket: "many", key: `k${String(i).padStart(2, "0")}`, data: data[i]!, ...(i === 5 ? { options: { rf: 9 } } : {}) };
      }
    }
    const puts = await plain.putMany(items(), { concurrency: 3 });
    expect(pulled).toBe(24);
    expect(puts.map((outcome) => outcome.key)).toEqual(data.map((_, i) => `k${String(i).padStart(2, "0")}`));
    puts.forEach((outcome, i) => {
      if (i === 5) {
        expect(outcome.ok).toBe(false);
        if (!outcome.ok) expect(outcome.error.code).toBe("bad_request");
      } else {
        expect(outcome.ok).toBe(true);
        if (outcome.ok) expect(outcome.value.checksum).toBe(sha256(data[i]!));
      }
    });
    const refs = [...data.keys()].map((i) => ({ bucket: "many", key: `k${String(i).padStart(2, "0")}` }));
    refs.push({ bucket: "many", key: "nope" });
    const gets = await client({ cacheBytes: 0 }).getMany(refs, { concurrency: 4 });
    expect(gets.length).toBe(25);
    gets.forEach((outcome, i) => {
      if (i === 5 || i === 24) {
        expect(outcome.ok).toBe(false);
        if (!outcome.ok) expect(outcome.error.code).toBe("not_found");
      } else {
        expect(outcome.ok && same(outcome.value, data[i]!)).toBe(true);
      }
    });
  });
});

describe("ball groups", () => {
  test("list, get and delete a group by ball id; other groups untouched; empty groups are not found", async () => {
    const members = new Map<string, Uint8Array>();
    for (let i = 0; i < 6; i += 1) {
      const data = randomBytes(random, Math.floor(random() * 600 * KiB));
      members.set(`run-1/part-${i}`, data);
      await plain.put("groups", `run-1/part-${i}`, data, { ballId: "run-1" });
    }
    const outsider = randomBytes(random, 1000);
    await plain.put("groups", "run-2/part-0", outsider, { ballId: "run-2" });

    const listed = await plain.listGroup("groups", "run-1");
    expect(listed.map((ball) => ball.key).sort()).toEqual([...members.keys()].sort());
    expect(listed.every((ball) => ball.ballId === "run-1")).toBe(true);

    const got = new Map<string, Uint8Array>();
    for await (const { meta, data } of plain.getGroup("groups", "run-1", { concurrency: 2 })) got.set(meta.key, data);
    expect([...got.keys()]).toEqual(listed.map((ball) => ball.key)); // in listing order
    for (const [name, data] of members) expect(same(got.get(name)!, data)).toBe(true);

    const deleted = await plain.deleteGroup("groups", "run-1");
    expect(deleted.sort()).toEqual([...members.keys()].sort());
    expect(await plain.listGroup("groups", "run-1")).toEqual([]);
    expect((await rejection(plain.deleteGroup("groups", "run-1"))).code).toBe("not_found");
    const empty = async () => {
      for await (const _ of plain.getGroup("groups", "run-1")) throw new Error("an empty group yielded a ball");
    };
    expect((await rejection(empty())).code).toBe("not_found");
    expect(same(await plain.get("groups", "run-2/part-0"), outsider)).toBe(true);
  });
});

describe("getToFile", () => {
  const partials = (dir: string) => readdirSync(dir).filter((name) => name.includes("mictlanx-partial"));

  test("writes the file (or into a directory), leaving no partial file", async () => {
    const data = randomBytes(random, 900 * KiB);
    await plain.put("files", "deep/name.bin", data);
    const dir = join(files, "out-ok");
    const target = join(dir, "sub", "copy.bin");
    const written = await plain.getToFile("files", "deep/name.bin", target);
    expect(written.path).toBe(target);
    expect(same(readFileSync(target), data)).toBe(true);
    expect(partials(join(dir, "sub"))).toEqual([]);
    const intoDir = await plain.getToFile("files", "deep/name.bin", dir);
    expect(intoDir.path).toBe(join(dir, "name.bin"));
    expect(same(readFileSync(join(dir, "name.bin")), data)).toBe(true);
  });

  test("on failure: no partial file, and an existing target is untouched", async () => {
    const dir = join(files, "out-fail");
    mkdirSync(dir, { recursive: true });
    const target = join(dir, "target.bin");
    writeFileSync(target, "the old contents");
    const check = () => {
      expect(readFileSync(target, "utf8")).toBe("the old contents");
      expect(partials(dir)).toEqual([]);
    };
    // Missing ball: fails before any file is made.
    expect((await rejection(plain.getToFile("files", "missing", target))).code).toBe("not_found");
    check();
    // Wrong key: fails after the partial file was opened.
    await client({ key, chunkSize: 256 * KiB }).put("files", "sealed", randomBytes(random, 700 * KiB));
    expect((await rejection(client({ key: randomBytes(random, 32) }).getToFile("files", "sealed", target))).code).toBe("corrupt");
    check();
    // A payload whose sha256 differs from its metadata: fails after every byte was written.
    await putWithWrongChecksum("files", "lying", randomBytes(random, 700 * KiB));
    const lying = await rejection(client({ cacheBytes: 0 }).getToFile("files", "lying", target));
    expect(lying.code).toBe("corrupt");
    expect(lying.message).toContain("payload sha256");
    check();
    // Aborted halfway.
    const big = randomBytes(random, 3 * MiB);
    await plain.put("files", "big", big);
    const abort = new AbortController();
    const reader = client({ cacheBytes: 0, concurrency: 1 });
    let aborted = false;
    try {
      await reader.getToFile("files", "big", target, { signal: abort.signal, onProgress: (done) => done > MiB && abort.abort(new Error("stop")) });
    } catch (error) {
      aborted = (error as Error).message === "stop";
    }
    expect(aborted).toBe(true);
    check();
    expect(statSync(dir).isDirectory()).toBe(true);
    expect(existsSync(join(dir, "big"))).toBe(false);
  });
});

/** A ball written through the router directly, with a sha256 that is not its payload's. */
async function putWithWrongChecksum(bucket: string, key: string, data: Uint8Array, tags: Record<string, string> = {}, chunkSize = 256 * KiB): Promise<void> {
  const routers = new RouterSet(router, undefined, Math.random, undefined, asAdmin.security);
  try {
    const { objectId } = await routers.call("ball.begin", { bucket, key, rf: 2 });
    const records = [];
    for (let index = 0; index * chunkSize < data.byteLength; index += 1) {
      const chunk = data.subarray(index * chunkSize, (index + 1) * chunkSize);
      records.push(await routers.call("ball.putChunk", { bucket, key, objectId, index, rf: 2, data: chunk, checksum: checksumHex(chunkChecksum(chunk)) }));
    }
    const wrong = sha256(data).replace(/^./, (c) => (c === "0" ? "1" : "0"));
    await routers.call("ball.commit", { bucket, key, objectId, rf: 2, size: data.byteLength, checksum: wrong, contentType: "application/octet-stream", tags, chunkSize, chunks: records });
  } finally {
    routers.close();
  }
}

describe("what the client checks itself", () => {
  test("a payload that does not match its sha256 is a CorruptError, never returned", async () => {
    await putWithWrongChecksum("checks", "lying", randomBytes(random, 600 * KiB));
    const error = await rejection(client({ cacheBytes: 0 }).get("checks", "lying"));
    expect(error.code).toBe("corrupt");
    expect(error.message).toContain("checks/lying: payload sha256");
    // The cache kept nothing of it.
    const cached = client();
    await rejection(cached.get("checks", "lying"));
    expect(cached.stats().cache.bytes).toBe(0);
  });

  test("verify chunks: each chunk's xxh3 is checked but not the ball's sha256; the CLI's --verify says the same", async () => {
    const data = randomBytes(random, 700 * KiB);
    await putWithWrongChecksum("checks", "lying-verify", data);
    // Every chunk matches its xxh3, so a get that skips the whole-ball sha256 returns the bytes.
    expect(same(await client({ cacheBytes: 0, verify: "chunks" }).get("checks", "lying-verify"), data)).toBe(true);
    expect(same(await client({ cacheBytes: 0 }).get("checks", "lying-verify", { verify: "chunks" }), data)).toBe(true);
    // The default, and a get that asks for it over a Client set to chunks, still refuse it.
    expect((await rejection(client({ cacheBytes: 0 }).get("checks", "lying-verify"))).code).toBe("corrupt");
    expect((await rejection(client({ cacheBytes: 0, verify: "chunks" }).get("checks", "lying-verify", { verify: "full" }))).code).toBe("corrupt");
    expect(() => client({ verify: "none" as never })).toThrow("verify must be one of full, chunks");

    const out = join(files, "lying-verify.bin");
    const loose = await cli(["get", "checks/lying-verify", "--router", router, "-o", out, "--verify", "chunks"]);
    expect(loose.code).toBe(0);
    expect(same(readFileSync(out), data)).toBe(true);
    rmSync(out);
    const strict = await cli(["get", "checks/lying-verify", "--router", router, "-o", out]);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain("payload sha256");
    expect(existsSync(out)).toBe(false);
    const wrong = await cli(["get", "checks/lying-verify", "--router", router, "-o", out, "--verify", "none"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("full, chunks");
  });

  test("a compressed chunk that would inflate past the chunk size is refused", async () => {
    // A real zstd frame of 1 MiB of zeros, stored as one chunk of a ball that declares 4 KiB chunks.
    const bomb = new Uint8Array([1, ...Bun.zstdCompressSync(new Uint8Array(MiB))]);
    const routers = new RouterSet(router, undefined, Math.random, undefined, asAdmin.security);
    try {
      await routers.call("ball.put", {
        bucket: "checks",
        key: "bomb",
        rf: 1,
        size: 4096,
        checksum: sha256(new Uint8Array(4096)),
        contentType: "application/octet-stream",
        tags: { compression: "zstd" },
        chunkSize: 4096,
        data: bomb,
      });
    } finally {
      routers.close();
    }
    const error = await rejection(client({ cacheBytes: 0 }).get("checks", "bomb"));
    expect(error.code).toBe("corrupt");
    expect(error.message).toBe(`cannot decompress chunk 0 of checks/bomb: it declares ${MiB} bytes, over the chunk size 4096`);
  });
});
