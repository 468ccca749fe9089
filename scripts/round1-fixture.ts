// Makes test/fixtures/round1/: a VSS's data dir written by the round-1 build (commit 8b521ea),
// so that test/integration/compat-round1.test.ts can check that today's build reads it.
//
//   bun scripts/round1-fixture.ts [--seed N] [--out test/fixtures/round1]
//
// Steps: check the round-1 commit out into a temp worktree (its node_modules are a symlink to
// this repo's: its dependencies are the same versions, see the README beside the fixture),
// start a local VSS with round-1's own startLocalVss (3 peers, 1 router, insecure: round 1 had
// no TLS), put a set of balls of every kind through round-1's own Client (empty, one byte, one
// chunk, many chunks, a ball group, tags, compressed, encrypted, an overwrite, a delete), stop
// the VSS cleanly, and copy its data (catalog and peers' dirs, not the logs) to --out with
// manifest.json: every ball that must read back, with its size and sha256, and those that must
// not. The balls are small (4 KiB chunks) so the fixture stays well under 2 MB.
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { mulberry32, randomBytes } from "../test/support/random.ts";

export const round1Commit = "8b521ea";
const repo = resolve(import.meta.dir, "..");

interface BallPlan {
  bucket: string;
  key: string;
  data: Uint8Array;
  options: { chunkSize?: number; ballId?: string; tags?: Record<string, string>; compress?: boolean; contentType?: string };
  /** Put with the client that holds the encryption key. */
  encrypted?: boolean;
}

export interface ManifestBall {
  bucket: string;
  key: string;
  size: number;
  sha256: string;
  ballId?: string;
  tags?: Record<string, string>;
  encrypted?: boolean;
}

export interface Round1Manifest {
  commit: string;
  seed: number;
  madeBy: string;
  /** Hex of the 32-byte key the encrypted balls were sealed with (a test key, nothing secret). */
  encryptionKeyHex: string;
  balls: ManifestBall[];
  /** Balls deleted with the round-1 build: they must not come back. */
  deleted: Array<{ bucket: string; key: string }>;
  peers: string[];
}

const { values } = parseArgs({ options: { seed: { type: "string" }, out: { type: "string" } } });
const seed = values.seed === undefined ? 20261121 : Number(values.seed);
const out = resolve(values.out ?? join(repo, "test", "fixtures", "round1"));
const random = mulberry32(seed);
const sha256 = (data: Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");
const text = (size: number) => new TextEncoder().encode("round one\n".repeat(Math.ceil(size / 10)).slice(0, size));

function plan(): BallPlan[] {
  const chunk = 4 * 1024;
  return [
    { bucket: "compat", key: "empty", data: new Uint8Array(0), options: {} },
    { bucket: "compat", key: "one-byte", data: randomBytes(random, 1), options: {} },
    { bucket: "compat", key: "one-chunk.bin", data: randomBytes(random, chunk), options: { chunkSize: chunk } },
    { bucket: "compat", key: "many-chunks.bin", data: randomBytes(random, 10 * chunk + 123), options: { chunkSize: chunk, tags: { kind: "many", "round": "1" } } },
    { bucket: "compat", key: "dir/nested/name with spaces.txt", data: text(5_000), options: { chunkSize: chunk, contentType: "text/plain" } },
    { bucket: "compat", key: "compressed.txt", data: text(40_000), options: { chunkSize: chunk, compress: true } },
    { bucket: "compat", key: "sealed.bin", data: randomBytes(random, 3 * chunk + 7), options: { chunkSize: chunk }, encrypted: true },
    { bucket: "group", key: "frame-0", data: randomBytes(random, 2_000), options: { ballId: "video-1" } },
    { bucket: "group", key: "frame-1", data: randomBytes(random, 6_000), options: { ballId: "video-1", chunkSize: chunk } },
    { bucket: "group", key: "frame-2", data: randomBytes(random, 9), options: { ballId: "video-1" } },
  ];
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "mictlanx-round1-"));
  const tree = join(work, "src");
  const git = (...args: string[]) => {
    const done = Bun.spawnSync(["git", "-C", repo, ...args], { stdout: "inherit", stderr: "inherit" });
    if (done.exitCode !== 0) throw new Error(`git ${args.join(" ")} exited ${done.exitCode}`);
  };
  git("worktree", "add", "--detach", tree, round1Commit);
  try {
    symlinkSync(join(repo, "node_modules"), join(tree, "node_modules"));
    await makeData(tree, join(work, "vss"));
  } finally {
    git("worktree", "remove", "--force", tree);
    if (!process.env.MICTLANX_KEEP) rmSync(work, { recursive: true, force: true });
  }
}

async function makeData(tree: string, dir: string): Promise<void> {
  const { startLocalVss } = await import(join(tree, "src", "local", "vss.ts"));
  const { Client } = await import(join(tree, "src", "client", "client.ts"));
  const vss = await startLocalVss({ dir, peers: 3, routers: 1, basePort: 0, logs: false, command: [process.execPath, join(tree, "src", "main.ts")] });
  const routers: string[] = vss.routers.map((router: { address: string }) => router.address);
  const key = randomBytes(random, 32);
  const plain = new Client({ routers, cacheBytes: 0, rf: 2 });
  const sealed = new Client({ routers, cacheBytes: 0, rf: 2, key });
  const balls: ManifestBall[] = [];
  try {
    // An overwrite: the first version must not come back, the second must.
    await plain.put("compat", "overwritten", randomBytes(random, 3_000), {});
    await plain.put("compat", "deleted", randomBytes(random, 3_000), {});
    await plain.delete("compat", "deleted");
    const last = randomBytes(random, 5_000);
    await plain.put("compat", "overwritten", last, { chunkSize: 4096 });
    balls.push({ bucket: "compat", key: "overwritten", size: last.byteLength, sha256: sha256(last) });
    for (const ball of plan()) {
      await (ball.encrypted ? sealed : plain).put(ball.bucket, ball.key, ball.data, ball.options);
      const readBack: Uint8Array = await (ball.encrypted ? sealed : plain).get(ball.bucket, ball.key);
      if (sha256(readBack) !== sha256(ball.data)) throw new Error(`round 1 read ${ball.bucket}/${ball.key} back wrong`);
      balls.push({
        bucket: ball.bucket,
        key: ball.key,
        size: ball.data.byteLength,
        sha256: sha256(ball.data),
        ...(ball.options.ballId ? { ballId: ball.options.ballId } : {}),
        ...(ball.options.tags ? { tags: ball.options.tags } : {}),
        ...(ball.encrypted ? { encrypted: true } : {}),
      });
    }
  } finally {
    plain.close();
    sealed.close();
    await vss.stop();
  }
  rmSync(out, { recursive: true, force: true });
  for (const part of ["spm", "peers"]) cpSync(join(dir, part), join(out, part), { recursive: true });
  const manifest: Round1Manifest = {
    commit: round1Commit,
    seed,
    madeBy: "bun scripts/round1-fixture.ts",
    encryptionKeyHex: Buffer.from(key).toString("hex"),
    balls,
    deleted: [{ bucket: "compat", key: "deleted" }],
    peers: vss.peers.map((peer: { id: string }) => peer.id),
  };
  writeFileSync(join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  report(out);
}

function report(dir: string): void {
  let total = 0;
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else {
        total += stat.size;
        console.log(`${String(stat.size).padStart(9)}  ${relative(dir, path)}`);
      }
    }
  };
  walk(dir);
  console.log(`${total} bytes in ${dir}`);
  if (!existsSync(join(dir, "spm"))) throw new Error("no catalog was copied");
}

if (import.meta.main) await main();
