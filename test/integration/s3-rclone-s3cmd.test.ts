// rclone (provider Other) and s3cmd against the router's S3 endpoint over HTTPS with the test
// VSS's CA, each with its own config file in the test's temp dir. Downloads compared byte-exact.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, utimesSync, writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startTestVss, tempDir } from "../support/vss.ts";
import { testCredentials } from "../support/security.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import { fileSha256, rclone, s3cmd, treeDigest, type S3Target } from "../support/s3-tools.ts";

let vss: Awaited<ReturnType<typeof startTestVss>>;
let dir: string;
let target: S3Target;
const { random, seed } = seededRandom("s3-rclone-s3cmd");
console.log(`s3-rclone-s3cmd seed ${seed}`);

beforeAll(async () => {
  vss = await startTestVss({ label: "s3-rclone", routerArgs: ["--s3-port", "0"] });
  const endpoint = vss.routers[0]?.s3Url;
  if (endpoint === undefined) throw new Error("the router printed no S3 endpoint");
  dir = tempDir("s3-rclone-files");
  target = { endpoint, accessKey: testCredentials.accessKey, secretKey: testCredentials.secretKey, caFile: testCredentials.ca, dir };
}, 60_000);
afterAll(async () => {
  await vss?.cleanup();
  const files = dir;
  if (files && !process.env.MICTLANX_KEEP) rmSync(files, { recursive: true, force: true });
});

/** A small nested tree with fixed, old mtimes (so a round trip that loses them shows). */
function makeTree(root: string): Map<string, number> {
  const mtimes = new Map<string, number>();
  const names = ["top.txt", "with space.bin", "é/ñ ü.dat", "a/b/c/deep.bin", "a/b/other+&.txt"];
  names.forEach((name, index) => {
    const path = join(root, name);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, randomBytes(random, 1 + Math.floor(random() * 50_000)));
    const mtime = 1_600_000_000 + index * 3_600; // whole seconds, years back
    utimesSync(path, mtime, mtime);
    mtimes.set(name, mtime);
  });
  return mtimes;
}

describe("rclone", () => {
  test("copy, check, lsf, lsl keeps mtimes, sync down byte-exact, delete", async () => {
    const tool = rclone(target);
    await tool.must(["mkdir", "vss:rclone-bucket"]);
    const source = join(dir, "rc-source");
    const mtimes = makeTree(source);
    await tool.must(["copy", source, "vss:rclone-bucket/tree"]);
    await tool.must(["check", source, "vss:rclone-bucket/tree"]); // sizes and md5 (the ETags) agree
    const listed = (await tool.must(["lsf", "-R", "--files-only", "vss:rclone-bucket/tree"])).stdout.trim().split("\n").sort();
    expect(listed).toEqual([...mtimes.keys()].sort());
    // lsl prints each object's modification time: rclone's own X-Amz-Meta-Mtime, kept with the ball.
    const lsl = (await tool.must(["lsl", "vss:rclone-bucket/tree"])).stdout;
    for (const [name, mtime] of mtimes) {
      const line = lsl.split("\n").find((row) => row.endsWith(` ${name}`));
      expect(line).toBeDefined();
      expect(line).toContain(new Date(mtime * 1000).toISOString().slice(0, 19).replace("T", " "));
    }
    const back = join(dir, "rc-back");
    await tool.must(["sync", "vss:rclone-bucket/tree", back]);
    expect(treeDigest(back)).toEqual(treeDigest(source));
    await tool.must(["delete", "vss:rclone-bucket/tree"]);
    expect((await tool.must(["lsf", "-R", "vss:rclone-bucket/tree"])).stdout.trim()).toBe("");
  }, 90_000);
});

describe("s3cmd", () => {
  test("mb, put, get byte-exact, ls of buckets, del, rb", async () => {
    const tool = s3cmd(target);
    await tool.must(["mb", "s3://s3cmd-bucket"]);
    const up = join(dir, "s3cmd-up");
    writeFileSync(up, randomBytes(random, 123_457));
    await tool.must(["put", up, "s3://s3cmd-bucket/some dir/file é.bin"]);
    const down = join(dir, "s3cmd-down");
    await tool.must(["get", "s3://s3cmd-bucket/some dir/file é.bin", down]);
    expect(fileSha256(down)).toBe(fileSha256(up));
    expect((await tool.must(["ls"])).stdout).toContain("s3://s3cmd-bucket");
    await tool.must(["del", "s3://s3cmd-bucket/some dir/file é.bin"]);
    await tool.must(["rb", "s3://s3cmd-bucket"]);
    expect((await tool.must(["ls"])).stdout).not.toContain("s3://s3cmd-bucket");
  }, 60_000);

  test("ls --recursive of a bucket lists the keys put", async () => {
    const tool = s3cmd(target);
    await tool.must(["mb", "s3://s3cmd-listed"]);
    const up = join(dir, "s3cmd-listed");
    writeFileSync(up, randomBytes(random, 1_000));
    for (const key of ["a b/1", "a b/2", "é/3"]) await tool.must(["put", up, `s3://s3cmd-listed/${key}`]);
    const listed = (await tool.must(["ls", "--recursive", "s3://s3cmd-listed"])).stdout;
    for (const key of ["a b/1", "a b/2", "é/3"]) expect(listed).toContain(`s3://s3cmd-listed/${key}`);
  }, 60_000);
});
