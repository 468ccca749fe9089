// Today's build on a data dir the round-1 build (commit 8b521ea) wrote: the catalog (schema 1,
// no access keys, no peer instances) and three peers' shards and indexes, made by
// scripts/round1-fixture.ts (test/fixtures/round1/README.md). A copy of it is started as a VSS
// of today's binary, with TLS and keys as `up` runs it now, and every ball reads back
// byte-exact by its sha256 in the manifest; the deleted one stays deleted, the group and the
// tags are still there. Then new balls go onto the same shards, and after a restart of every
// role old and new read back again.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { cli, clientFor, credentialsOf, eventually, spmStatus, startTestVss, tempDir } from "../support/vss.ts";
import { rejection } from "../support/errors.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import { Client } from "../../src/client/client.ts";
import type { Round1Manifest } from "../../scripts/round1-fixture.ts";
import { schemaVersion } from "../../src/catalog/schema.ts";

const fixture = join(import.meta.dir, "..", "fixtures", "round1");
const manifest = JSON.parse(readFileSync(join(fixture, "manifest.json"), "utf8")) as Round1Manifest;
const sha256 = (data: Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");
const { random, seed } = seededRandom("compat-round1");

let vss: Awaited<ReturnType<typeof startTestVss>>;
let plain: Client;
let sealed: Client;

function clients(): void {
  plain = clientFor(vss, { chunkSize: 4096 });
  const key = new Uint8Array(Buffer.from(manifest.encryptionKeyHex, "hex"));
  sealed = new Client({ routers: vss.routers.map((router) => router.address), cacheBytes: 0, ...credentialsOf(vss), key });
}

beforeAll(async () => {
  const dir = tempDir("compat-round1");
  cpSync(join(fixture, "spm"), join(dir, "spm"), { recursive: true });
  cpSync(join(fixture, "peers"), join(dir, "peers"), { recursive: true });
  vss = await startTestVss({ label: "compat-round1", dir, peers: manifest.peers.length });
  clients();
});

afterAll(async () => {
  plain?.close();
  sealed?.close();
  await vss?.cleanup();
});

async function stopAll(): Promise<void> {
  plain.close();
  sealed.close();
  await vss.stop();
}

/** Every role again on its port, in the order `up` starts them, and new clients. */
async function startAgain(): Promise<void> {
  await vss.startSpm();
  for (let index = 0; index < vss.peers.length; index += 1) await vss.startPeer(index);
  for (let index = 0; index < vss.routers.length; index += 1) await vss.startRouter(index);
  await eventually("every peer up again", 20_000, async () => (await spmStatus(vss)).peers.every((peer) => peer.state === "up"));
  clients();
}

/** Balls this build put onto the round-1 shards. */
const fresh = Array.from({ length: 5 }, (_, i) => ({ key: `new-${i}`, data: randomBytes(random, 1 + Math.floor(random() * 20_000)) }));

async function everyBallReadsBack(): Promise<void> {
  for (const ball of manifest.balls) {
    const bytes = await (ball.encrypted ? sealed : plain).get(ball.bucket, ball.key);
    expect({ key: ball.key, size: bytes.byteLength, sha256: sha256(bytes) }).toEqual({ key: ball.key, size: ball.size, sha256: ball.sha256 });
  }
}

async function freshBallsReadBack(): Promise<void> {
  for (const ball of fresh) expect(sha256(await plain.get("compat", ball.key))).toBe(sha256(ball.data));
}

describe(`a data dir written by round 1 (${manifest.commit}, fixture seed ${manifest.seed})`, () => {
  test("the catalog was migrated forward to this build's schema", () => {
    const db = new Database(join(vss.dir, "spm", "catalog.sqlite"), { readonly: true });
    expect(db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'schema_version'").get()?.value).toBe(String(schemaVersion));
    db.close();
  });

  test(`every one of its ${manifest.balls.length} balls reads back byte-exact, with its tags and group`, async () => {
    await everyBallReadsBack();
    for (const ball of manifest.balls.filter((ball) => ball.tags)) {
      expect((await plain.stat(ball.bucket, ball.key)).tags).toMatchObject(ball.tags!);
    }
    const groups = manifest.balls.filter((ball) => ball.ballId === "video-1").map((ball) => ball.key);
    expect((await plain.listGroup("group", "video-1")).map((ball) => ball.key).sort()).toEqual(groups.sort());
  });

  test("what round 1 deleted stays deleted", async () => {
    for (const gone of manifest.deleted) expect((await rejection(plain.get(gone.bucket, gone.key))).code).toBe("not_found");
  });

  test(`new balls go onto the same shards, and old and new read back after every role restarts (seed ${seed})`, async () => {
    for (const ball of fresh) await plain.put("compat", ball.key, ball.data, { chunkSize: 4096 });
    await stopAll();
    await startAgain();
    await everyBallReadsBack();
    await freshBallsReadBack();
  });

  test("each peer's index, rebuilt from its shards alone (round-1 records and this build's side by side), serves every ball", async () => {
    await stopAll();
    for (const peer of vss.peers) {
      for (const suffix of ["", "-wal", "-shm"]) rmSync(join(peer.data, `index.sqlite${suffix}`), { force: true });
      const rebuilt = await cli(["peer", "--data", peer.data, "--rebuild-index"]);
      if (rebuilt.code !== 0) console.error(`${peer.id}: ${rebuilt.stderr}`);
      expect({ peer: peer.id, code: rebuilt.code }).toEqual({ peer: peer.id, code: 0 });
    }
    await startAgain();
    await everyBallReadsBack();
    await freshBallsReadBack();
  });
});
