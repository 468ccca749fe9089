// What the catalog holds of an encrypted ball (issue 11, point 5): nothing computed from the
// plaintext and no name beyond the key. `stat --json` through the real program, of a ball put
// with --key-file, shows neither the plaintext's sha256 nor the local file's name or type; the
// read is still verified end to end (GCM per chunk, sha256 of the sealed chunks); balls
// encrypted before the change (plaintext sha256) still read; and a chunk of another sealing at
// the same place, which GCM alone would accept, is caught by the sealed chunks' sha256.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "../../src/client/index.ts";
import { sealChunk } from "../../src/client/seal.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { routerOps } from "../../src/protocol/router.ts";
import { chunkChecksum, checksumHex } from "../../src/lib/checksum.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, startTestVss, tempDir } from "../support/vss.ts";
import { rejection } from "../support/errors.ts";
import { asAdmin, testCredentials } from "../support/security.ts";

const { random, seed } = seededRandom("encrypted-catalog");
const KiB = 1024;
const dir = tempDir("encrypted-catalog");
const key = randomBytes(random, 32);
const keyFile = join(dir, "key.hex");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let env: Record<string, string>;
const pool = new RpcPool({ role: "test", ...asAdmin });
const clients: Client[] = [];

beforeAll(async () => {
  vss = await startTestVss({ label: "encrypted-catalog", peers: 3, routers: 1 });
  env = { MICTLANX_ROUTERS: vss.routers[0]!.address };
  writeFileSync(keyFile, `${Buffer.from(key).toString("hex")}\n`);
});
afterAll(async () => {
  for (const client of clients) client.close();
  pool.close();
  await vss?.cleanup();
  if (!process.env.MICTLANX_KEEP) rmSync(dir, { recursive: true, force: true });
});

const sha256 = (...parts: Uint8Array[]) => {
  const hasher = new Bun.CryptoHasher("sha256");
  for (const part of parts) hasher.update(part);
  return hasher.digest("hex");
};
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

function client(options: Partial<ConstructorParameters<typeof Client>[0]> = {}): Client {
  const made = new Client({ ...testCredentials, routers: vss.routers[0]!.address, cacheBytes: 0, ...options });
  clients.push(made);
  return made;
}

describe(`an encrypted ball in the catalog (seed ${seed})`, () => {
  test("stat --json of a ball put with --key-file shows no plaintext digest and no file name; get still verifies and returns it exactly", async () => {
    const data = randomBytes(random, 3 * 64 * KiB + 123);
    const file = join(dir, "salaries-2024.pdf");
    writeFileSync(file, data);
    const put = await cli(["put", "vault/doc-1", file, "--key-file", keyFile, "--chunk-size", "64KiB", "--json"], { env });
    expect(put.stderr).toBe("");
    expect(put.code).toBe(0);
    const stat = await cli(["stat", "vault/doc-1", "--json"], { env });
    expect(stat.code).toBe(0);
    const meta = JSON.parse(stat.stdout);
    expect(stat.stdout).not.toContain(sha256(data));
    expect(stat.stdout).not.toContain("salaries");
    expect(stat.stdout).not.toContain("pdf");
    expect(meta.tags.fullname).toBeUndefined();
    expect(meta.tags.extension).toBeUndefined();
    expect(meta.tags).toMatchObject({ encryption: "aes-256-gcm", checksum_of: "sealed", num_chunks: "4", full_checksum: meta.checksum });
    expect(meta.contentType).toBe("application/octet-stream"); // from the key, not from the local file's name
    expect(JSON.parse(put.stdout).checksum).toBe(meta.checksum);
    // The same file put again under another key: another digest (fresh IVs), so the catalog cannot tell they are one file.
    expect((await cli(["put", "vault/doc-2", file, "--key-file", keyFile, "--chunk-size", "64KiB"], { env })).code).toBe(0);
    expect(JSON.parse((await cli(["stat", "vault/doc-2", "--json"], { env })).stdout).checksum).not.toBe(meta.checksum);
    const out = join(dir, "back.pdf");
    const get = await cli(["get", "vault/doc-1", "--key-file", keyFile, "-o", out], { env });
    expect(get.stderr).toBe("");
    expect(get.code).toBe(0);
    expect(same(new Uint8Array(await Bun.file(out).arrayBuffer()), data)).toBe(true);
    // The control: the same file put without a key shows its sha256 and its name, as it should.
    expect((await cli(["put", "open/salaries-2024.pdf", file], { env })).code).toBe(0);
    const open = await cli(["stat", "open/salaries-2024.pdf", "--json"], { env });
    expect(open.stdout).toContain(sha256(data));
    expect(JSON.parse(open.stdout).tags.fullname).toBe("salaries-2024.pdf");
  }, 60_000);

  test("a ball encrypted before the change (its checksum the plaintext's) still reads, and a cached encrypted ball reads right twice", async () => {
    const router = new ServiceClient(routerOps, pool, parseAddress(vss.routers[0]!.address));
    const chunkSize = 64 * KiB;
    const data = randomBytes(random, 2 * chunkSize + 500);
    const pieces = [data.subarray(0, chunkSize), data.subarray(chunkSize, 2 * chunkSize), data.subarray(2 * chunkSize)];
    // Written as the client did before checksum_of: tags with the name and the plaintext's sha256.
    const putOld = async (checksum: string) => {
      const { objectId } = await router.call("ball.begin", { bucket: "vault", key: "old.bin", rf: 2 });
      const chunks = [];
      for (const [index, piece] of pieces.entries()) {
        const sealed = sealChunk(key, piece, { bucket: "vault", key: "old.bin", index, final: index === pieces.length - 1 });
        chunks.push(await router.call("ball.putChunk", { bucket: "vault", key: "old.bin", objectId, index, rf: 2, data: sealed, checksum: checksumHex(chunkChecksum(sealed)) }));
      }
      const tags = { encryption: "aes-256-gcm", fullname: "old.bin", extension: "bin", num_chunks: "3", full_checksum: checksum };
      await router.call("ball.commit", { bucket: "vault", key: "old.bin", size: data.byteLength, checksum, contentType: "application/octet-stream", tags, rf: 2, chunkSize, objectId, chunks });
    };
    await putOld(sha256(data));
    expect(same(await client({ key }).get("vault", "old.bin"), data)).toBe(true);
    // Its plaintext checksum is what is checked: the same chunks declared with another digest are refused.
    await putOld("0".repeat(64));
    const wrong = await rejection(client({ key }).get("vault", "old.bin"));
    expect(wrong.code).toBe("corrupt");
    expect(wrong.message).toContain("payload sha256");
    const cached = client({ key, cacheBytes: 8 * 1024 * KiB, chunkSize });
    const fresh = randomBytes(random, 3 * chunkSize);
    await cached.put("vault", "cached.bin", fresh);
    expect(same(await cached.get("vault", "cached.bin"), fresh)).toBe(true); // from the chunks the put kept
    expect(same(await cached.get("vault", "cached.bin"), fresh)).toBe(true);
    expect(cached.stats().cache.hits).toBeGreaterThan(0);
  }, 60_000);

  test("a chunk from another sealing at the same place opens with the key, but the sealed chunks' sha256 refuses the ball", async () => {
    const router = new ServiceClient(routerOps, pool, parseAddress(vss.routers[0]!.address));
    const chunkSize = 64 * KiB;
    const place = (index: number) => ({ bucket: "vault", key: "swapped.bin", index, final: index === 1 });
    const first = sealChunk(key, randomBytes(random, chunkSize), place(0));
    const second = sealChunk(key, randomBytes(random, chunkSize), place(1));
    const older = sealChunk(key, randomBytes(random, chunkSize), place(1)); // e.g. chunk 1 of an older version of the same key
    const { objectId } = await router.call("ball.begin", { bucket: "vault", key: "swapped.bin", rf: 2 });
    const chunks = [];
    for (const [index, sealed] of [first, older].entries()) {
      chunks.push(await router.call("ball.putChunk", { bucket: "vault", key: "swapped.bin", objectId, index, rf: 2, data: sealed, checksum: checksumHex(chunkChecksum(sealed)) }));
    }
    const checksum = sha256(first, second);
    const tags = { encryption: "aes-256-gcm", checksum_of: "sealed", num_chunks: "2", full_checksum: checksum };
    await router.call("ball.commit", { bucket: "vault", key: "swapped.bin", size: 2 * chunkSize, checksum, contentType: "application/octet-stream", tags, rf: 2, chunkSize, objectId, chunks });
    const error = await rejection(client({ key }).get("vault", "swapped.bin"));
    expect(error.code).toBe("corrupt");
    expect(error.message).toContain("the sealed chunks' sha256");
  }, 60_000);
});
