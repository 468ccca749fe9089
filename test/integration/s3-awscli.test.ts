// aws-cli (Debian's /usr/bin/aws) against the router's S3 endpoint over HTTPS with the test
// VSS's CA, its config in the test's temp dir. Every download compared byte-exact.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startTestVss, tempDir } from "../support/vss.ts";
import { testCredentials } from "../support/security.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import { awsCli, fileSha256, signedFetch as signedFetchAs, treeDigest, type S3Target } from "../support/s3-tools.ts";

let vss: Awaited<ReturnType<typeof startTestVss>>;
let dir: string;
let aws: ReturnType<typeof awsCli>;
let target: S3Target;
const signedFetch = (method: string, path: string, headers: Record<string, string>, body: string) => signedFetchAs(target, method, path, headers, body);
const { random, seed } = seededRandom("s3-awscli");
console.log(`s3-awscli seed ${seed}`);
const MiB = 1024 * 1024;

beforeAll(async () => {
  vss = await startTestVss({ label: "s3-awscli", routerArgs: ["--s3-port", "0"] });
  const endpoint = vss.routers[0]?.s3Url;
  if (endpoint === undefined) throw new Error("the router printed no S3 endpoint");
  dir = tempDir("s3-awscli-files");
  target = { endpoint, accessKey: testCredentials.accessKey, secretKey: testCredentials.secretKey, caFile: testCredentials.ca, dir };
  // The multipart at 8 MiB, in this test's own config (as `aws configure set default.s3.multipart_chunksize 8MB` writes it).
  aws = awsCli(target, ["s3 =", "  multipart_chunksize = 8MB", "  multipart_threshold = 8MB"]);
  await aws.must(["s3", "mb", "s3://cli"]);
}, 60_000);
afterAll(async () => {
  await vss?.cleanup();
  const files = dir;
  if (files && !process.env.MICTLANX_KEEP) rmSync(files, { recursive: true, force: true });
});

function writeRandom(path: string, size: number): string {
  const bytes = randomBytes(random, size);
  writeFileSync(path, bytes);
  return createHash("sha256").update(bytes).digest("hex");
}

describe("aws-cli", () => {
  test.each([0, 1])("aws s3 cp of a %d-byte file up and down is byte-exact", async (size) => {
    const up = join(dir, `up-${size}`);
    const sha = writeRandom(up, size);
    await aws.must(["s3", "cp", up, `s3://cli/small/${size}`]);
    const down = join(dir, `down-${size}`);
    await aws.must(["s3", "cp", `s3://cli/small/${size}`, down]);
    expect(fileSha256(down)).toBe(sha);
  }, 30_000);

  test("aws s3 cp of 100 MiB goes multipart at 8 MiB (ETag -13) and comes back byte-exact", async () => {
    const up = join(dir, "big");
    const sha = writeRandom(up, 100 * MiB);
    await aws.must(["s3", "cp", up, "s3://cli/big/100MiB"], { timeoutMs: 80_000 });
    const head = JSON.parse((await aws.must(["s3api", "head-object", "--bucket", "cli", "--key", "big/100MiB"])).stdout) as { ContentLength: number; ETag: string };
    expect(head.ContentLength).toBe(100 * MiB);
    expect(head.ETag).toMatch(/^"[0-9a-f]{32}-13"$/);
    const down = join(dir, "big-down");
    await aws.must(["s3", "cp", "s3://cli/big/100MiB", down], { timeoutMs: 80_000 });
    expect(fileSha256(down)).toBe(sha);
  }, 180_000);

  test("aws s3 sync a nested tree (spaces, UTF-8) up and back down, ls --recursive, rm --recursive", async () => {
    const source = join(dir, "tree");
    const names = ["a.txt", "with space.bin", "é/ünïcode ñ.dat", "deep/er/still/x+y&z.txt", "deep/er/other.bin"];
    for (let i = 0; i < 30; i += 1) names.push(`many/${i % 3}/file-${i}.bin`);
    for (const name of names) {
      mkdirSync(join(source, name, ".."), { recursive: true });
      writeRandom(join(source, name), Math.floor(random() * 20_000));
    }
    await aws.must(["s3", "sync", source, "s3://cli/tree"], { timeoutMs: 60_000 });
    const listed = (await aws.must(["s3", "ls", "--recursive", "s3://cli/tree/"])).stdout;
    const keys = listed.trim().split("\n").map((line) => line.replace(/^\S+\s+\S+\s+\d+\s+/, "")).sort();
    expect(keys).toEqual(names.map((name) => `tree/${name}`).sort());
    const back = join(dir, "tree-back");
    await aws.must(["s3", "sync", "s3://cli/tree", back], { timeoutMs: 60_000 });
    expect(treeDigest(back)).toEqual(treeDigest(source));
    await aws.must(["s3", "rm", "--recursive", "s3://cli/tree/"], { timeoutMs: 60_000 });
    expect((await aws.must(["s3", "ls", "--recursive", "s3://cli/tree/"]).catch(() => ({ stdout: "" }))).stdout.trim()).toBe("");
  }, 120_000);

  test("aws s3 presign: the URL fetches the object byte-exact; an expired one is refused", async () => {
    const up = join(dir, "presigned");
    const sha = writeRandom(up, 4096);
    await aws.must(["s3", "cp", up, "s3://cli/presigned"]);
    const url = (await aws.must(["s3", "presign", "s3://cli/presigned", "--expires-in", "300"])).stdout.trim();
    const ca = readFileSync(testCredentials.ca, "utf8");
    const got = await fetch(url, { tls: { ca } });
    expect(got.status).toBe(200);
    expect(createHash("sha256").update(new Uint8Array(await got.arrayBuffer())).digest("hex")).toBe(sha);
    const short = (await aws.must(["s3", "presign", "s3://cli/presigned", "--expires-in", "1"])).stdout.trim();
    await Bun.sleep(2_100); // the URL's own expiry: nothing to wait for but the clock
    const expired = await fetch(short, { tls: { ca } });
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain("<Code>AccessDenied</Code>");
  }, 30_000);

  test("aws s3api get-object --range, head-object", async () => {
    const up = join(dir, "ranged");
    writeRandom(up, 300_000);
    const bytes = readFileSync(up);
    await aws.must(["s3api", "put-object", "--bucket", "cli", "--key", "api/source", "--body", up]);
    const part = join(dir, "range-down");
    await aws.must(["s3api", "get-object", "--bucket", "cli", "--key", "api/source", "--range", "bytes=1000-1999", part]);
    expect(readFileSync(part).equals(bytes.subarray(1000, 2000))).toBe(true);
    const head = JSON.parse((await aws.must(["s3api", "head-object", "--bucket", "cli", "--key", "api/source"])).stdout) as { ContentLength: number; ETag: string };
    expect(head.ContentLength).toBe(300_000);
    expect(head.ETag).toBe(`"${createHash("md5").update(bytes).digest("hex")}"`);
  }, 30_000);

  test("aws s3api copy-object: the copy reads back byte-exact", async () => {
    const up = join(dir, "copied");
    writeRandom(up, 70_000);
    await aws.must(["s3api", "put-object", "--bucket", "cli", "--key", "api/copy-source", "--body", up]);
    await aws.must(["s3api", "copy-object", "--bucket", "cli", "--key", "api/copy", "--copy-source", "cli/api/copy-source"]);
    const copy = join(dir, "copy-down");
    await aws.must(["s3api", "get-object", "--bucket", "cli", "--key", "api/copy", copy]);
    expect(fileSha256(copy)).toBe(fileSha256(up));
  }, 30_000);

  test("a conditional put (If-None-Match: *) on an existing key is 412 PreconditionFailed", async () => {
    // Debian's aws-cli 2.9 has no --if-none-match on put-object: the same request, signed, by fetch.
    const help = await aws.run(["s3api", "put-object", "help"]);
    expect(help.stdout.replace(/.\x08/g, "")).not.toContain("--if-none-match");
    const first = await signedFetch("PUT", "/cli/api/cond", { "if-none-match": "*", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, "first");
    expect(first.status).toBe(200);
    const again = await signedFetch("PUT", "/cli/api/cond", { "if-none-match": "*", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, "second");
    expect(again.status).toBe(412);
    expect(await again.text()).toContain("<Code>PreconditionFailed</Code>");
    const down = join(dir, "cond-down");
    await aws.must(["s3api", "get-object", "--bucket", "cli", "--key", "api/cond", down]);
    expect(readFileSync(down, "utf8")).toBe("first");
  }, 30_000);
});
