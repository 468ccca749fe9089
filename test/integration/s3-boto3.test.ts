// boto3 (Debian's python3-boto3, run with /usr/bin/python3) against the router's S3 endpoint
// over HTTPS with the test VSS's CA: test/fixtures/s3_boto3.py does one check per run and
// prints JSON. Plus a tampered aws-chunked chunk signature, sent from Bun (boto3 does not sign chunks).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, createHmac } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { Agent } from "node:https";
import { resolve } from "node:path";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { cli, startTestVss, tempDir } from "../support/vss.ts";
import { testCredentials } from "../support/security.ts";
import { mustRun, signedFetch, type S3Target } from "../support/s3-tools.ts";

let vss: Awaited<ReturnType<typeof startTestVss>>;
let target: S3Target;
const bucket = "boto";
const script = resolve(import.meta.dir, "../fixtures/s3_boto3.py");

beforeAll(async () => {
  vss = await startTestVss({ label: "s3-boto3", routerArgs: ["--s3-port", "0"] });
  const endpoint = vss.routers[0]?.s3Url;
  if (endpoint === undefined) throw new Error("the router printed no S3 endpoint");
  target = { endpoint, accessKey: testCredentials.accessKey, secretKey: testCredentials.secretKey, caFile: testCredentials.ca, dir: tempDir("s3-boto3-files") };
  const s3 = sdk();
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  s3.destroy();
}, 60_000);
afterAll(async () => {
  await vss?.cleanup();
  const files = target?.dir;
  if (files && !process.env.MICTLANX_KEEP) rmSync(files, { recursive: true, force: true });
});

function sdk(): S3Client {
  return new S3Client({ endpoint: target.endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: target.accessKey, secretAccessKey: target.secretKey }, requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: readFileSync(target.caFile, "utf8"), maxSockets: 16 }) }) });
}

async function boto(check: string, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<unknown> {
  const run = await mustRun(["/usr/bin/python3", script, check], { S3_ENDPOINT: target.endpoint, S3_ACCESS_KEY: target.accessKey, S3_SECRET_KEY: target.secretKey, S3_CA_FILE: target.caFile, S3_BUCKET: bucket, ...env }, { timeoutMs });
  return JSON.parse(run.stdout);
}

describe("boto3", () => {
  test("upload_fileobj/download_fileobj of ~24 MiB multipart at 8 MiB: byte-exact, ETag -4", async () => {
    const got = (await boto("multipart", {}, 80_000)) as { same: boolean; etag: string };
    expect(got.same).toBe(true);
    expect(got.etag).toMatch(/^"[0-9a-f]{32}-4"$/);
  }, 90_000);

  test("paginated listing of 2,500 keys with a delimiter: every key once, in byte order, CommonPrefixes folded", async () => {
    const s3 = sdk();
    const keys = Array.from({ length: 2_500 }, (_, i) => `many/k-${String(i).padStart(4, "0")}`);
    const folded = Array.from({ length: 10 }, (_, i) => `many/sub-${i}/x`);
    const all = [...keys, ...folded];
    let next = 0;
    const worker = async () => {
      while (next < all.length) {
        const key = all[next++] ?? "";
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    s3.destroy();
    const listed = (await boto("listing")) as { keys: string[]; prefixes: string[]; pages: number };
    expect(listed.keys).toEqual(keys);
    expect(listed.prefixes).toEqual(Array.from({ length: 10 }, (_, i) => `many/sub-${i}/`));
    expect(listed.pages).toBe(3); // 1,000 a page
  }, 90_000);

  test("presigned PUT and GET used with urllib: byte-exact", async () => {
    const got = (await boto("presigned")) as { putStatus: number; same: boolean };
    expect(got.putStatus).toBe(200);
    expect(got.same).toBe(true);
  }, 60_000);

  test("a wrong secret is SignatureDoesNotMatch, a missing grant AccessDenied", async () => {
    const made = await cli(["key", "create", "--bucket", bucket, "--allow", "read,list", "--json", "--spm", vss.spm.address]);
    expect(made.code).toBe(0);
    const limited = JSON.parse(made.stdout) as { accessKey: string; secretKey: string };
    const got = (await boto("refusals", { S3_LIMITED_ACCESS_KEY: limited.accessKey, S3_LIMITED_SECRET_KEY: limited.secretKey })) as Record<string, unknown>;
    expect(got.wrongSecret).toBe("SignatureDoesNotMatch");
    expect(typeof got.listedWithGrant).toBe("number");
    expect(got.missingGrant).toBe("AccessDenied");
  }, 60_000);
});

describe("aws-chunked signed streaming (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) against the gateway", () => {
  const hmac = (key: Buffer | string, text: string) => createHmac("sha256", key).update(text).digest();
  const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

  /** A signed streaming PUT: the seed signature from the headers, each chunk signed after it; `tamper` flips one chunk signature. */
  async function streamingPut(key: string, chunks: Uint8Array[], tamper: boolean): Promise<Response> {
    const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
    const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
    const day = amzDate.slice(0, 8);
    const scope = `${day}/us-east-1/s3/aws4_request`;
    const headers = { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "content-encoding": "aws-chunked", "x-amz-decoded-content-length": String(total), "x-amz-date": amzDate };
    // The seed signature: the same signer as any header-auth request, over the headers only.
    const seed = await signedFetch(target, "PUT", `/${bucket}/${key}`, headers, "", "us-east-1", { signOnly: true });
    const authorization = seed.headers.get("authorization") ?? "";
    let previous = /Signature=([0-9a-f]{64})/.exec(authorization)?.[1] ?? "";
    expect(previous).toHaveLength(64);
    const signingKey = hmac(hmac(hmac(hmac(`AWS4${target.secretKey}`, day), "us-east-1"), "s3"), "aws4_request");
    const parts: Uint8Array[] = [];
    for (const [index, chunk] of [...chunks, new Uint8Array(0)].entries()) {
      let signature = hmac(signingKey, ["AWS4-HMAC-SHA256-PAYLOAD", amzDate, scope, previous, sha256(""), sha256(chunk)].join("\n")).toString("hex");
      previous = signature;
      if (tamper && index === 1) signature = `${signature.slice(0, 63)}${signature.endsWith("0") ? "1" : "0"}`;
      parts.push(new TextEncoder().encode(`${chunk.byteLength.toString(16)};chunk-signature=${signature}\r\n`), chunk, new TextEncoder().encode("\r\n"));
    }
    return fetch(new URL(`/${bucket}/${key}`, target.endpoint), { method: "PUT", headers: { ...Object.fromEntries(seed.headers), "content-length": String(parts.reduce((sum, part) => sum + part.byteLength, 0)) }, body: Buffer.concat(parts), tls: { ca: readFileSync(target.caFile, "utf8") } });
  }

  test("chunk signatures verified: the honest upload is stored byte-exact, a tampered chunk signature is SignatureDoesNotMatch and nothing is stored", async () => {
    const chunks = [new Uint8Array(64 * 1024).fill(7), new Uint8Array(64 * 1024).fill(9), new Uint8Array(100).fill(1)];
    const honest = await streamingPut("chunked/honest", chunks, false);
    expect(honest.status).toBe(200);
    const got = await signedFetch(target, "GET", `/${bucket}/chunked/honest`, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, "");
    expect(Buffer.from(await got.arrayBuffer()).equals(Buffer.concat(chunks))).toBe(true);
    const tampered = await streamingPut("chunked/tampered", chunks, true);
    expect(tampered.status).toBe(403);
    expect(await tampered.text()).toContain("<Code>SignatureDoesNotMatch</Code>");
    const missing = await signedFetch(target, "HEAD", `/${bucket}/chunked/tampered`, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, "");
    expect(missing.status).toBe(404);
  }, 30_000);
});
