// The router's S3 endpoint through the real AWS SDK (its defaults unchanged: CRC32 checksums,
// aws-chunked trailer uploads), over HTTPS with the test VSS's CA, against a real VSS.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketPolicyCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Sha256 } from "@smithy/core/checksum";
import { SignatureV4 } from "@smithy/signature-v4";
import { limits } from "../../src/lib/limits.ts";
import { cli, eventually, startTestVss } from "../support/vss.ts";
import { testCredentials } from "../support/security.ts";
import { s3ErrorOf, s3SdkClient } from "../support/s3-sdk.ts";

let vss: Awaited<ReturnType<typeof startTestVss>>;
let endpoint: string;

function clientWith(accessKeyId: string, secretAccessKey: string): S3Client {
  return s3SdkClient(endpoint, accessKeyId, secretAccessKey);
}
let s3: S3Client;
/** The VSS's CA certificate (credentials name its file). */
const caPem = readFileSync(testCredentials.ca, "utf8");

beforeAll(async () => {
  vss = await startTestVss({ label: "s3-sdk", routerArgs: ["--s3-port", "0"] });
  const url = vss.routers[0]?.s3Url;
  if (url === undefined) throw new Error(`the router printed no S3 endpoint: ${vss.routers[0]?.readyLine}`);
  endpoint = url;
  s3 = clientWith(testCredentials.accessKey, testCredentials.secretKey);
  await s3.send(new CreateBucketCommand({ Bucket: "sdk" }));
}, 60_000);
afterAll(async () => {
  s3?.destroy();
  await vss?.cleanup();
});

const errorOf = s3ErrorOf;

async function getBytes(key: string, range?: string): Promise<Uint8Array> {
  const got = await s3.send(new GetObjectCommand({ Bucket: "sdk", Key: key, ...(range ? { Range: range } : {}) }));
  return got.Body ? await got.Body.transformToByteArray() : new Uint8Array(0);
}

describe("S3 through @aws-sdk/client-s3", () => {
  test("the ready line names the endpoint, https with TLS on", () => {
    expect(endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  test.each([0, 1, 5 * 1024 * 1024 + 3])("put, get, head, delete of %d bytes: byte-exact, ETag = MD5", async (size) => {
    const body = new Uint8Array(randomBytes(size));
    const key = `objects/size-${size}`;
    const md5 = createHash("md5").update(body).digest("hex");
    const put = await s3.send(new PutObjectCommand({ Bucket: "sdk", Key: key, Body: body }));
    expect(put.ETag).toBe(`"${md5}"`);
    const got = await getBytes(key);
    expect(got.byteLength).toBe(size);
    expect(Buffer.from(got).equals(Buffer.from(body))).toBe(true);
    // The GET says its length (streamed chunk by chunk, yet not chunked-framed: s3cmd needs it).
    const reply = await s3.send(new GetObjectCommand({ Bucket: "sdk", Key: key }));
    expect(reply.ContentLength).toBe(size);
    await reply.Body?.transformToByteArray();
    const head = await s3.send(new HeadObjectCommand({ Bucket: "sdk", Key: key }));
    expect(head.ContentLength).toBe(size);
    expect(head.ETag).toBe(`"${md5}"`);
    await s3.send(new DeleteObjectCommand({ Bucket: "sdk", Key: key }));
    expect((await errorOf(s3.send(new GetObjectCommand({ Bucket: "sdk", Key: key })))).name).toBe("NoSuchKey");
  }, 60_000);

  test("a streamed body (the SDK's aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER with its CRC32 trailer) is stored byte-exact", async () => {
    const body = new Uint8Array(randomBytes(3 * 1024 * 1024 + 17));
    const sent: string[] = [];
    const watched = clientWith(testCredentials.accessKey, testCredentials.secretKey);
    watched.middlewareStack.add((next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      sent.push(request.headers?.["x-amz-content-sha256"] ?? "");
      return next(args);
    }, { step: "finalizeRequest", priority: "low" });
    const put = await watched.send(new PutObjectCommand({ Bucket: "sdk", Key: "streamed", Body: Readable.from([body.subarray(0, 1000), body.subarray(1000)]), ContentLength: body.byteLength }));
    watched.destroy();
    expect(sent).toEqual(["STREAMING-UNSIGNED-PAYLOAD-TRAILER"]);
    expect(put.ETag).toBe(`"${createHash("md5").update(body).digest("hex")}"`);
    expect(Buffer.from(await getBytes("streamed")).equals(Buffer.from(body))).toBe(true);
  }, 60_000);

  test("a body whose CRC32 does not match is BadDigest and nothing is stored", async () => {
    const refused = await errorOf(s3.send(new PutObjectCommand({ Bucket: "sdk", Key: "bad-crc", Body: "hello", ChecksumCRC32: "AAAAAA==" })));
    expect(refused.name).toBe("BadDigest");
    expect((await errorOf(s3.send(new HeadObjectCommand({ Bucket: "sdk", Key: "bad-crc" })))).$metadata.httpStatusCode).toBe(404);
  }, 30_000);

  test("Content-Type and x-amz-meta-* come back as they were put; the ball keeps them under s3:", async () => {
    await s3.send(new PutObjectCommand({ Bucket: "sdk", Key: "meta/doc", Body: "hello", ContentType: "text/x-test; charset=utf-8", Metadata: { colour: "Blue Green", "x-y": "z" } }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: "sdk", Key: "meta/doc" }));
    expect(head.ContentType).toBe("text/x-test; charset=utf-8");
    expect(head.Metadata).toEqual({ colour: "Blue Green", "x-y": "z" });
    const stat = await cli(["stat", "sdk/meta/doc", "--json", "--router", vss.routers.map((router) => router.address).join(",")]);
    expect(stat.code).toBe(0);
    expect(stat.stdout).toContain('"s3:meta:colour"');
    expect(stat.stdout).toContain('"s3:etag"');
  }, 30_000);

  test("the native client may not set a tag in the gateway's s3: namespace", async () => {
    const put = await cli(["put", "sdk/forged", "-", "--router", vss.routers.map((router) => router.address).join(","), "--tag", "s3:etag=forged"], { stdin: new TextEncoder().encode("x") });
    expect(put.code).toBe(2);
    expect(put.stderr).toContain("s3:");
  }, 30_000);

  test("ranges: first bytes, middle across a chunk edge, suffix, open end; past the end is InvalidRange", async () => {
    const body = new Uint8Array(randomBytes(2 * 1024 * 1024 + 10));
    await s3.send(new PutObjectCommand({ Bucket: "sdk", Key: "ranges/big", Body: body }));
    const slice = (from: number, to: number) => Buffer.from(body.subarray(from, to));
    expect(Buffer.from(await getBytes("ranges/big", "bytes=0-9")).equals(slice(0, 10))).toBe(true);
    const edge = 1024 * 1024;
    expect(Buffer.from(await getBytes("ranges/big", `bytes=${edge - 5}-${edge + 4}`)).equals(slice(edge - 5, edge + 5))).toBe(true);
    expect(Buffer.from(await getBytes("ranges/big", "bytes=-7")).equals(slice(body.length - 7, body.length))).toBe(true);
    expect(Buffer.from(await getBytes("ranges/big", `bytes=${body.length - 3}-`)).equals(slice(body.length - 3, body.length))).toBe(true);
    const refused = await errorOf(getBytes("ranges/big", `bytes=${body.length}-`));
    expect(refused.name).toBe("InvalidRange");
    expect(refused.$metadata.httpStatusCode).toBe(416);
  }, 60_000);

  test("ListObjectsV2: prefix, delimiter folds into CommonPrefixes, max-keys pages with continuation tokens", async () => {
    const keys = ["list/a", "list/b/1", "list/b/2", "list/c", "list/d/1", "list/e"];
    for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: "sdk", Key: key, Body: key }));
    const flat = await s3.send(new ListObjectsV2Command({ Bucket: "sdk", Prefix: "list/" }));
    expect(flat.Contents?.map((entry) => entry.Key)).toEqual(keys);
    expect(flat.Contents?.[0]?.ETag).toBe(`"${createHash("md5").update("list/a").digest("hex")}"`);
    expect(flat.Contents?.[0]?.Size).toBe(6);
    const folded = await s3.send(new ListObjectsV2Command({ Bucket: "sdk", Prefix: "list/", Delimiter: "/" }));
    expect(folded.Contents?.map((entry) => entry.Key)).toEqual(["list/a", "list/c", "list/e"]);
    expect(folded.CommonPrefixes?.map((entry) => entry.Prefix)).toEqual(["list/b/", "list/d/"]);
    expect(folded.KeyCount).toBe(5);
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: "sdk", Prefix: "list/", Delimiter: "/", MaxKeys: 2, ...(token ? { ContinuationToken: token } : {}) }));
      pages += 1;
      expect(page.KeyCount).toBeLessThanOrEqual(2);
      seen.push(...(page.Contents ?? []).map((entry) => entry.Key ?? ""), ...(page.CommonPrefixes ?? []).map((entry) => entry.Prefix ?? ""));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    expect(pages).toBe(3);
    expect(seen.sort()).toEqual(["list/a", "list/b/", "list/c", "list/d/", "list/e"]);
  }, 60_000);

  test("buckets: create, head, list, delete only when empty; a missing one is NoSuchBucket", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "made-by-sdk" }));
    await s3.send(new HeadBucketCommand({ Bucket: "made-by-sdk" }));
    const listed = await s3.send(new ListBucketsCommand({}));
    expect(listed.Buckets?.map((bucket) => bucket.Name)).toContain("made-by-sdk");
    expect((await errorOf(s3.send(new CreateBucketCommand({ Bucket: "made-by-sdk" })))).name).toBe("BucketAlreadyOwnedByYou");
    await s3.send(new PutObjectCommand({ Bucket: "made-by-sdk", Key: "x", Body: "x" }));
    expect((await errorOf(s3.send(new DeleteBucketCommand({ Bucket: "made-by-sdk" })))).name).toBe("BucketNotEmpty");
    await s3.send(new DeleteObjectCommand({ Bucket: "made-by-sdk", Key: "x" }));
    await s3.send(new DeleteBucketCommand({ Bucket: "made-by-sdk" }));
    expect((await errorOf(s3.send(new HeadBucketCommand({ Bucket: "made-by-sdk" })))).$metadata.httpStatusCode).toBe(404);
    expect((await errorOf(s3.send(new PutObjectCommand({ Bucket: "no-such-bucket", Key: "k", Body: "b" })))).name).toBe("NoSuchBucket");
    expect((await errorOf(s3.send(new ListObjectsV2Command({ Bucket: "no-such-bucket" })))).name).toBe("NoSuchBucket");
  }, 60_000);

  test("refusals: a wrong secret is SignatureDoesNotMatch, a key without the grant AccessDenied, an op not built NotImplemented", async () => {
    const wrong = clientWith(testCredentials.accessKey, "x".repeat(40));
    expect((await errorOf(wrong.send(new ListObjectsV2Command({ Bucket: "sdk" })))).name).toBe("SignatureDoesNotMatch");
    wrong.destroy();
    const made = await cli(["key", "create", "--bucket", "sdk", "--allow", "read,list", "--json", "--spm", vss.spm.address]);
    expect(made.code).toBe(0);
    const reader = JSON.parse(made.stdout) as { accessKey: string; secretKey: string };
    await s3.send(new CreateBucketCommand({ Bucket: "not-granted" }));
    const limited = clientWith(reader.accessKey, reader.secretKey);
    await limited.send(new ListObjectsV2Command({ Bucket: "sdk" })); // list is granted
    expect((await limited.send(new ListBucketsCommand({}))).Buckets?.map((bucket) => bucket.Name)).toEqual(["sdk"]); // not the buckets it holds no grant on
    const denied = await errorOf(limited.send(new PutObjectCommand({ Bucket: "sdk", Key: "nope", Body: "b" })));
    expect(denied.name).toBe("AccessDenied");
    expect(denied.$metadata.httpStatusCode).toBe(403);
    expect((await errorOf(limited.send(new DeleteObjectCommand({ Bucket: "sdk", Key: "list/a" })))).name).toBe("AccessDenied");
    expect((await cli(["key", "revoke", reader.accessKey, "--spm", vss.spm.address])).code).toBe(0);
    await eventually("the revoked key is refused", 15_000, async () => {
      const refused = await errorOf(limited.send(new ListObjectsV2Command({ Bucket: "sdk" })));
      return refused.name === "AccessDenied" || refused.name;
    });
    limited.destroy();
    const notBuilt = await errorOf(s3.send(new GetBucketPolicyCommand({ Bucket: "sdk" })));
    expect(notBuilt.name).toBe("NotImplemented");
    expect(notBuilt.$metadata.httpStatusCode).toBe(501);
  }, 60_000);

  /** A request signed by the admin key for `region`, sent as it is with fetch. */
  async function signedFetch(method: string, path: string, headers: Record<string, string>, body: string, region = "us-east-1"): Promise<Response> {
    const url = new URL(path, endpoint);
    const signer = new SignatureV4({ credentials: { accessKeyId: testCredentials.accessKey, secretAccessKey: testCredentials.secretKey }, region, service: "s3", sha256: Sha256, uriEscapePath: false });
    const query = Object.fromEntries(url.searchParams);
    const signed = await signer.sign({ method, protocol: "https:", hostname: url.hostname, port: Number(url.port), path: url.pathname, query, headers: { host: url.host, ...headers }, body });
    return fetch(url, { method, headers: signed.headers, body: method === "GET" || method === "HEAD" ? null : body, tls: { ca: caPem } });
  }

  test("a put declaring one byte over s3PutObjectBytesMax is EntityTooLarge before any byte is read; at the bound it is not refused for size", async () => {
    const over = await signedFetch("PUT", "/sdk/huge", { "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-decoded-content-length": String(limits.s3PutObjectBytesMax + 1) }, "0\r\n\r\n");
    expect(over.status).toBe(400);
    expect(await over.text()).toContain("<Code>EntityTooLarge</Code>");
    const at = await signedFetch("PUT", "/sdk/huge", { "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-decoded-content-length": String(limits.s3PutObjectBytesMax) }, "0\r\n\r\n");
    expect(await at.text()).toContain("<Code>IncompleteBody</Code>"); // the body is cut short, not too large
  }, 30_000);

  test("a request signed for another region is refused with the region expected", async () => {
    const response = await signedFetch("GET", "/sdk?list-type=2", { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, "", "eu-west-1");
    expect(response.status).toBe(400);
    const body = await response.text();
    expect(body).toContain("<Code>AuthorizationHeaderMalformed</Code>");
    expect(body).toContain("<Region>us-east-1</Region>");
  });

  test("ListObjectsV2 max-keys above s3ListKeysMax is held to it", async () => {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: "sdk", MaxKeys: limits.s3ListKeysMax + 1 }));
    expect(page.MaxKeys).toBe(limits.s3ListKeysMax);
  });

  test("anonymous requests are AccessDenied", async () => {
    const response = await fetch(`${endpoint}/sdk?list-type=2`, { tls: { ca: caPem } });
    expect(response.status).toBe(403);
    expect(await response.text()).toContain("<Code>AccessDenied</Code>");
  });
});

describe("S3 on an --insecure router: plain HTTP, requests believed", () => {
  let open: Awaited<ReturnType<typeof startTestVss>>;
  beforeAll(async () => {
    open = await startTestVss({ label: "s3-insecure", insecure: true, routerArgs: ["--s3-port", "0"] });
  }, 60_000);
  afterAll(async () => {
    await open?.cleanup();
  });

  test("the SDK over http: create, streamed put, get byte-exact, list", async () => {
    const url = open.routers[0]?.s3Url ?? "";
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const plain = new S3Client({ endpoint: url, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "anyone", secretAccessKey: "anything" } });
    await plain.send(new CreateBucketCommand({ Bucket: "open" }));
    const body = new Uint8Array(randomBytes(1024 * 1024 + 5));
    await plain.send(new PutObjectCommand({ Bucket: "open", Key: "k", Body: Readable.from([body]), ContentLength: body.byteLength }));
    const got = await plain.send(new GetObjectCommand({ Bucket: "open", Key: "k" }));
    expect(Buffer.from((await got.Body?.transformToByteArray()) ?? []).equals(Buffer.from(body))).toBe(true);
    const listed = await plain.send(new ListObjectsV2Command({ Bucket: "open" }));
    expect(listed.Contents?.map((entry) => entry.Key)).toEqual(["k"]);
    plain.destroy();
  }, 60_000);
});
